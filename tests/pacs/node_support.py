"""Helpers for the DICOM node tests: a node on a free port, DCMTK runs, generated instances."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pydicom
import requests
from pydicom.uid import generate_uid

from tests.peers import free_port, require_tool
from workbench.pacs import Config, Index
from workbench.pacs.node import DicomNode

NODE_AET = "WORKBENCH"
#: A small real MR (64x64, 16 bit, explicit VR little endian) used as a header template.
TEMPLATE = Path("nema_mr1_small_transcodes") / "MR_small.dcm"


@dataclass
class RunningNode:
    index: Index
    node: DicomNode
    config: Config

    @property
    def port(self) -> int:
        return self.node.port


def start_node(storage: Path, modalities: dict | None = None, **options) -> RunningNode:
    """An index in ``storage`` and a started node on a free loopback port."""
    config = Config(
        StorageDirectory=str(storage),
        DicomAet=NODE_AET,
        DicomPort=free_port(),
        DicomModalities=dict(modalities or {}),
        **options,
    )
    index = Index(config)
    node = DicomNode(index, config)
    node.start()
    return RunningNode(index, node, config)


def serve_process(log: Path, *args: str) -> tuple[subprocess.Popen, str]:
    """Start ``workbench serve ARGS`` in its own process, its log appended to ``log``; return
    the process and its REST address once it reports it."""
    process = subprocess.Popen(
        [sys.executable, "-m", "workbench.cli", "serve", *args],
        stdout=subprocess.PIPE,
        stderr=open(log, "ab"),  # noqa: SIM115
        text=True,
    )
    deadline = time.monotonic() + 60
    assert process.stdout is not None
    while time.monotonic() < deadline:
        line = process.stdout.readline()
        if not line:
            raise AssertionError(f"workbench serve exited: {log.read_text()[-2000:]}")
        found = re.search(r"REST\s+(http://\S+)", line)
        if found:
            return process, found.group(1)
    process.kill()
    raise AssertionError("workbench serve did not report its REST address")


def dcmtk(tool: str, *args: str, check: bool = True, timeout: float = 120) -> str:
    """Run a DCMTK tool with Nagle off (DCMTK 3.6.7 reads TCP_NODELAY from the environment)."""
    binary = require_tool(tool)
    env = {**os.environ, "TCP_NODELAY": "1"}
    done = subprocess.run([binary, *args], capture_output=True, text=True, env=env, timeout=timeout)
    output = done.stdout + done.stderr
    if check and done.returncode != 0:
        raise AssertionError(f"{tool} {' '.join(args)} failed ({done.returncode}):\n{output}")
    return output


def dicom_files(root: Path) -> list[Path]:
    """Every DICOM file under ``root`` (skips the manifest and readme)."""
    return sorted(
        path
        for path in root.rglob("*")
        if path.is_file() and path.suffix.lower() not in (".md", ".tsv", ".txt", ".json")
    )


def sop_uid(path: Path) -> str:
    return str(pydicom.dcmread(path, stop_before_pixels=True).SOPInstanceUID)


def pixel_bytes(path: Path) -> bytes | None:
    """The raw (0x7FE0,0010) value as stored, or None when the file has no pixel data."""
    ds = pydicom.dcmread(path)
    return ds.PixelData if "PixelData" in ds else None


def generate_instances(
    template: Path, out_dir: Path, count: int, *, series: int = 1, tag: str = "GEN"
) -> list[Path]:
    """Write ``count`` instances copied from a real header, with new patient/study/series/SOP
    UIDs, spread over ``series`` series of one study."""
    out_dir.mkdir(parents=True, exist_ok=True)
    ds = pydicom.dcmread(template)
    study = generate_uid()
    series_uids = [generate_uid() for _ in range(series)]
    ds.PatientID = f"{tag}-{study[-8:]}"
    ds.PatientName = f"{tag}^{study[-6:]}"
    ds.StudyInstanceUID = study
    paths = []
    for number in range(count):
        ds.SeriesInstanceUID = series_uids[number % series]
        ds.SOPInstanceUID = generate_uid()
        ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
        ds.InstanceNumber = number + 1
        path = out_dir / f"{tag}{number:05d}.dcm"
        ds.save_as(path, enforce_file_format=True)
        paths.append(path)
    return paths


def start_storescp(
    directory: Path, aet: str = "STORESCP", *, extra: tuple[str, ...] = ()
) -> tuple[subprocess.Popen, int]:
    """A DCMTK storescp writing what it receives into ``directory``."""
    binary = require_tool("storescp")
    directory.mkdir(parents=True, exist_ok=True)
    port = free_port()
    env = {**os.environ, "TCP_NODELAY": "1"}
    process = subprocess.Popen(
        [binary, "-aet", aet, "-od", str(directory), *extra, str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=env,
    )
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        probe = subprocess.run(
            [require_tool("echoscu"), "-aec", aet, "127.0.0.1", str(port)], capture_output=True
        )
        if probe.returncode == 0:
            return process, port
        time.sleep(0.1)
    process.kill()
    raise RuntimeError("storescp did not start")


def store_files(storage: Path) -> list[Path]:
    """The files of the store (its UUID-named files, not the incoming or lock files)."""
    return [path for path in storage.glob("??/??/*") if path.is_file()]


def all_changes(url: str) -> list[dict]:
    """Every change a server's ``/changes`` lists, read page by page."""
    changes, since = [], 0
    while True:
        page = requests.get(
            f"{url}/changes", params={"since": since, "limit": 100}, timeout=30
        ).json()
        changes += page["Changes"]
        since = page["Last"]
        if page["Done"]:
            return changes


def note_where_received(monkeypatch, index) -> list[Path]:
    """The directories ``index.ingest_received`` is given its received files in, call by
    call, for the rest of the test (each call still stores as before)."""
    seen: list[Path] = []
    ingest_received = index.ingest_received

    def noting(path, **kwargs):
        seen.append(Path(path).parent)
        return ingest_received(path, **kwargs)

    monkeypatch.setattr(index, "ingest_received", noting)
    return seen
