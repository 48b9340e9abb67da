"""Helpers of the reliability tests: a ``workbench serve`` child process, instance generation
and small DIMSE/REST clients that record exactly what the server acknowledged."""

from __future__ import annotations

import contextlib
import copy
import hashlib
import io
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil
import pydicom
import requests
from pydicom.dataset import Dataset
from pydicom.uid import generate_uid
from pynetdicom import AE, evt
from pynetdicom.sop_class import MRImageStorage, Verification

from tests.peers import free_port
from workbench.pacs.node.contexts import keep_responses_for_senders

REPO = Path(__file__).resolve().parents[2]
NODE_AET = "WORKBENCH"
#: The calling AE of the tests' DIMSE clients; declared in DicomModalities so it may query.
CLIENT_AET = "RELIABILITY"
#: A small real MR (64x64, 16-bit, explicit VR little endian) used as the header template.
TEMPLATE = REPO / "data" / "sample" / "nema_mr1_small_transcodes" / "MR_small.dcm"
UUID_NAME = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")


# ------------------------------------------------------------------------------ the server
@dataclass
class ServerProcess:
    """``workbench serve`` running as a child process on free loopback ports."""

    workdir: Path
    config: dict[str, Any]
    process: subprocess.Popen | None = None
    log_path: Path | None = None
    starts: int = 0
    auth: tuple[str, str] | None = None
    startup_lines: list[str] = field(default_factory=list)
    #: Variables set in the server's environment on top of this process's.
    environment: dict[str, str] = field(default_factory=dict)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.config['HttpPort']}"

    @property
    def dicom_port(self) -> int:
        return int(self.config["DicomPort"])

    @property
    def storage(self) -> Path:
        return Path(self.config["StorageDirectory"])

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def start(self, timeout: float = 60) -> ServerProcess:
        """Start (or restart) the server and wait until REST and DICOM both answer."""
        config_path = self.workdir / "config.json"
        config_path.write_text(json.dumps(self.config))
        self.starts += 1
        self.log_path = self.workdir / f"server-{self.starts}.log"
        log = open(self.log_path, "wb")  # noqa: SIM115 - owned by the child process
        env = {**os.environ, "PYTHONUNBUFFERED": "1", **self.environment}
        self.process = subprocess.Popen(
            [sys.executable, "-m", "workbench.cli", "serve", "--config", str(config_path)],
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=REPO,
            env=env,
        )
        log.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"workbench serve exited:\n{self.log()}")
            try:
                requests.get(self.url + "/system", timeout=2, auth=self.auth)
                if self.config.get("DicomPort") is None or echo(self.dicom_port):
                    break
            except requests.RequestException:
                pass
            time.sleep(0.1)
        else:
            self.kill()
            raise RuntimeError(f"workbench serve did not start:\n{self.log()}")
        self.startup_lines = self.log().splitlines()
        return self

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path else ""

    def rss(self) -> int:
        """Resident memory of the server process, in bytes."""
        return psutil.Process(self.pid).memory_info().rss

    def kill(self) -> None:
        """SIGKILL: no clean-up of any kind, like a power cut of the process."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(timeout=30)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.kill()

    def get(self, path: str, **kwargs: Any) -> requests.Response:
        kwargs.setdefault("auth", self.auth)
        return requests.get(self.url + path, timeout=60, **kwargs)

    def post(self, path: str, **kwargs: Any) -> requests.Response:
        kwargs.setdefault("auth", self.auth)
        return requests.post(self.url + path, timeout=60, **kwargs)

    def put(self, path: str, **kwargs: Any) -> requests.Response:
        kwargs.setdefault("auth", self.auth)
        return requests.put(self.url + path, timeout=60, **kwargs)


def server_config(storage: Path, **options: Any) -> dict[str, Any]:
    """A configuration on free loopback ports that lets :data:`CLIENT_AET` query and move."""
    config: dict[str, Any] = {
        "Name": "reliability",
        "StorageDirectory": str(storage),
        "HttpPort": free_port(),
        "DicomPort": free_port(),
        "DicomAet": NODE_AET,
        "DicomModalities": {"client": [CLIENT_AET, "127.0.0.1", free_port()]},
    }
    config.update(options)
    return config


def start_server(
    workdir: Path, *, auth: tuple[str, str] | None = None, **options: Any
) -> ServerProcess:
    """A started :class:`ServerProcess` with storage in ``workdir / "storage"``.

    ``auth`` registers that user (and turns authentication on) and makes the helper's own
    requests use it.
    """
    workdir.mkdir(parents=True, exist_ok=True)
    if auth is not None:
        options.setdefault("RegisteredUsers", {auth[0]: auth[1]})
        options.setdefault("AuthenticationEnabled", True)
    server = ServerProcess(workdir, server_config(workdir / "storage", **options), auth=auth)
    return server.start()


# --------------------------------------------------------------------------- DIMSE clients
def client_ae() -> AE:
    """An AE proposing MR storage (uncompressed) and verification, with short timeouts."""
    ae = AE(ae_title=CLIENT_AET)
    ae.acse_timeout = 30
    ae.dimse_timeout = 60
    ae.network_timeout = 60
    ae.add_requested_context(Verification)
    ae.add_requested_context(MRImageStorage)
    return ae


def set_nodelay(event: evt.Event) -> None:
    """Nagle off on the client's socket, as any tuned modality does (``EVT_CONN_OPEN``)."""
    sock = getattr(event.assoc.dul.socket, "socket", None)
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


def associate(ae: AE, port: int, *, called: str = NODE_AET):
    """An association to the node on loopback with Nagle off (as a scanner would tune it).

    The client's own pynetdicom race that drops about one response in a few thousand is
    closed too (:func:`keep_responses_for_senders`): these tests judge the node, not it.
    """
    assoc = ae.associate(
        "127.0.0.1", port, ae_title=called, evt_handlers=[(evt.EVT_CONN_OPEN, set_nodelay)]
    )
    keep_responses_for_senders(assoc)
    return assoc


def echo(port: int, *, called: str = NODE_AET) -> bool:
    """C-ECHO the node; True on success."""
    ae = AE(ae_title=CLIENT_AET)
    ae.acse_timeout = 5
    ae.add_requested_context(Verification)
    assoc = associate(ae, port, called=called)
    if not assoc.is_established:
        return False
    try:
        status = assoc.send_c_echo()
        return bool(status) and status.Status == 0
    finally:
        assoc.release()


def store_status(assoc, payload: Dataset | Path) -> int | None:
    """C-STORE one data set (or Part-10 file, sent as its raw bytes); the status or None."""
    status = assoc.send_c_store(payload)
    if not status or "Status" not in status:
        return None
    return int(status.Status)


# ------------------------------------------------------------------------------ instances
def template() -> Dataset:
    return pydicom.dcmread(TEMPLATE)


def retag(
    ds: Dataset, *, patient: str, study: str, series: str, number: int = 1, sop: str | None = None
) -> Dataset:
    """Give ``ds`` new identifiers in place (PatientID/Name, study, series, SOP UIDs)."""
    ds.PatientID = patient
    ds.PatientName = f"RELIABILITY^{patient}"
    ds.StudyInstanceUID = study
    ds.SeriesInstanceUID = series
    ds.SOPInstanceUID = sop or generate_uid()
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    ds.InstanceNumber = number
    return ds


def make_instance(
    base: Dataset, *, patient: str, study: str, series: str, number: int = 1, sop: str | None = None
) -> Dataset:
    """A copy of ``base`` with new identifiers (PatientID/Name, study, series, SOP UIDs)."""
    return retag(
        copy.deepcopy(base), patient=patient, study=study, series=series, number=number, sop=sop
    )


def to_bytes(ds: Dataset) -> bytes:
    buffer = io.BytesIO()
    ds.save_as(buffer, enforce_file_format=True)
    return buffer.getvalue()


def patient_series(base: Dataset, patient: str, count: int) -> list[Dataset]:
    """``count`` instances of one new study/series of ``patient``."""
    study, series = generate_uid(), generate_uid()
    return [
        make_instance(base, patient=patient, study=study, series=series, number=i + 1)
        for i in range(count)
    ]


# --------------------------------------------------------------------------- store checks
def sha1(data: bytes) -> str:
    return hashlib.sha1(data).hexdigest()


def stored_files(storage: Path) -> list[Path]:
    """Files of the store proper (UUID-named; not incoming, not quarantine)."""
    found = []
    for path in storage.rglob("*"):
        if path.is_file() and UUID_NAME.match(path.name) and len(path.parent.name) == 2:
            found.append(path)
    return found


def instance_uids(server: ServerProcess) -> list[str]:
    """SOPInstanceUID of every instance the REST API lists (duplicates kept)."""
    answer = server.get("/instances", params={"expand": "1"})
    answer.raise_for_status()
    return [item["MainDicomTags"]["SOPInstanceUID"] for item in answer.json()]


def chunks(items: list, count: int) -> Iterable[list]:
    """``items`` dealt round-robin into ``count`` lists."""
    return [items[i::count] for i in range(count)]
