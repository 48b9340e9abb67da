"""Fixtures of the pacs tests: the real files as a list, a loaded index, a live REST server."""

from __future__ import annotations

import os
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pydicom
import pytest

from tests.data import dicom_files
from tests.pacs.dicomweb_support import Corpus, read_corpus
from tests.peers import PostgresPeer
from workbench.pacs import Config, Index
from workbench.pacs.server import serve


@dataclass
class Database:
    """The kind of database an index test runs on: SQLite (the default) or PostgreSQL."""

    kind: str
    postgres: PostgresPeer | None = None

    def new_url(self) -> str | None:
        """A new database of this kind (``None`` for SQLite: the default file in the store)."""
        return self.postgres.new_database() if self.postgres else None

    def config(self, storage: Path, **options: Any) -> Config:
        """A configuration storing under ``storage``, indexed in a new database of this kind."""
        return Config(StorageDirectory=str(storage), DatabaseUrl=self.new_url(), **options)


@pytest.fixture(
    scope="module", params=["sqlite", pytest.param("postgresql", marks=pytest.mark.peers)]
)
def database(request) -> Database:
    """Each index test runs on SQLite and on a real PostgreSQL (one per session)."""
    if request.param == "sqlite":
        return Database("sqlite")
    return Database("postgresql", request.getfixturevalue("postgres"))


@dataclass
class Syncs:
    """Every sync of the store's files made during a test: whole-filesystem syncs (the
    paths given to ``syncfs``) and single ``fsync`` calls (their descriptors)."""

    filesystem: list[Path]
    single: list[int]


@pytest.fixture
def syncs(monkeypatch) -> Syncs:
    """Counts the syncs the store makes; each still runs."""
    from workbench.pacs import store

    seen = Syncs([], [])
    real_syncfs, real_fsync = store._syncfs, os.fsync
    monkeypatch.setattr(store, "_syncfs", lambda path: seen.filesystem.append(path) or
                        real_syncfs(path))  # fmt: skip
    monkeypatch.setattr(os, "fsync", lambda fd: seen.single.append(fd) or real_fsync(fd))
    return seen


@pytest.fixture(scope="session")
def pacs_files(data_root) -> list[Path]:
    """All DICOM files of one corpus: the sample, and the wider corpus where it is present."""
    return dicom_files(data_root)


@pytest.fixture(scope="session")
def loaded_index(tmp_path_factory, pacs_files) -> Index:
    """An index holding every file of :func:`pacs_files` (read-only for tests)."""
    index = Index(Config(StorageDirectory=str(tmp_path_factory.mktemp("loaded-index"))))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # vendor files break VR length rules; not our concern
        summary = index.import_path(*pacs_files, progress=False)
    assert not summary.errors, summary.errors
    yield index
    index.close()


@pytest.fixture(scope="session")
def live_server(loaded_index):
    """The REST API over :func:`loaded_index`, served by uvicorn on a free loopback port."""
    from workbench.pacs.rest.app import create_app
    from workbench.pacs.server import _start_rest

    config = loaded_index.config
    config.HttpPort = 0
    server, thread, port = _start_rest(create_app(loaded_index), config, "warning")
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(10)


@pytest.fixture
def fresh_server(tmp_path):
    """A background PACS (REST only) on an empty store, stopped after the test."""
    handle = serve(Config(StorageDirectory=str(tmp_path / "store"), HttpPort=0), dicom=False)
    yield handle
    handle.stop()


def read_uid(path: Path) -> str:
    """SOPInstanceUID of a file."""
    return str(pydicom.dcmread(path, stop_before_pixels=True).SOPInstanceUID)


@pytest.fixture(scope="module")
def orthanc_loaded(orthanc, pacs_files):
    """The session's real Orthanc holding exactly the files of :func:`pacs_files`."""
    orthanc.clear()
    for path in pacs_files:
        orthanc.upload(path)
    return orthanc


@pytest.fixture(scope="session")
def corpus(pacs_files) -> Corpus:
    """Every file the live server holds, read with pydicom."""
    return read_corpus(pacs_files)


@pytest.fixture(scope="session")
def dicomweb(live_server):
    """dicomweb-client pointed at the live server's ``/dicom-web``."""
    from dicomweb_client.api import DICOMwebClient

    return DICOMwebClient(url=f"{live_server}/dicom-web")
