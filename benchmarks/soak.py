"""Soak: minutes of mixed traffic against ``workbench serve`` on loopback.

Two DICOM associations and two REST clients store small instances (generated from a real MR
header; every 25th REST upload is a truncated file the server must refuse), while a C-FIND
client and a REST reader (studies, tags, previews, statistics) run. At the end every
acknowledged instance is looked for in the index.

Prints instances stored, acknowledged vs present, errors by kind, p50/p99 latency per
operation, peak RSS of the server, and how the first fifth of the run compares with the last
fifth (a server that degrades over time shows ratios well above 1).

Usage::

    python benchmarks/soak.py                # about 5 minutes
    python benchmarks/soak.py --seconds 60
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import random
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter, defaultdict
from pathlib import Path

import psutil
import pydicom
import requests
from pydicom.dataset import Dataset
from pydicom.uid import generate_uid
from pynetdicom import AE, evt
from pynetdicom.association import Association
from pynetdicom.sop_class import (
    MRImageStorage,
    StudyRootQueryRetrieveInformationModelFind,
    Verification,
)

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
from workbench.pacs.node.contexts import keep_responses_for_senders  # noqa: E402

TEMPLATE = REPO / "data" / "sample" / "nema_mr1_small_transcodes" / "MR_small.dcm"
NODE_AET, CLIENT_AET = "WORKBENCH", "SOAK"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def nodelay(event: evt.Event) -> None:
    """Nagle off, and pynetdicom's own lost-response race closed, on a client association.

    Without the second, about one C-STORE in 3,000 waited out its DIMSE timeout because the
    client's reactor took the response (see ``keep_responses_for_senders``): a fault of
    the client library, not of the server the soak measures.
    """
    keep_responses_for_senders(event.assoc)
    sock = getattr(event.assoc.dul.socket, "socket", None)
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


class Stats:
    """Latencies by operation (with their start times), errors by kind, acknowledgements."""

    def __init__(self, started: float) -> None:
        self.started = started
        self.lock = threading.Lock()
        self.latencies: dict[str, list[tuple[float, float]]] = defaultdict(list)
        self.errors: Counter = Counter()
        self.expected_refusals = 0
        self.acknowledged: set[str] = set()

    def timed(self, operation: str, begun: float) -> None:
        with self.lock:
            self.latencies[operation].append((begun - self.started, time.monotonic() - begun))

    def error(self, kind: str) -> None:
        with self.lock:
            self.errors[kind] += 1

    def ack(self, uid: str) -> None:
        with self.lock:
            self.acknowledged.add(uid)


def associate(ae: AE, port: int, stats: Stats, refusal: str) -> Association | None:
    """An association to the node, tuned by :func:`nodelay`; None, counted, if refused."""
    assoc = ae.associate(
        "127.0.0.1", port, ae_title=NODE_AET, evt_handlers=[(evt.EVT_CONN_OPEN, nodelay)]
    )
    if assoc.is_established:
        return assoc
    stats.error(refusal)
    return None


class Instances:
    """Fresh small instances: one patient/study/series per 50 instances."""

    def __init__(self, name: str) -> None:
        self.ds = pydicom.dcmread(TEMPLATE)
        self.name = name
        self.count = 0

    def next(self) -> Dataset:
        if self.count % 50 == 0:
            self.patient = f"SOAK-{self.name}-{self.count // 50}"
            self.study, self.series = generate_uid(), generate_uid()
        self.count += 1
        ds = self.ds
        ds.PatientID, ds.PatientName = self.patient, f"SOAK^{self.patient}"
        ds.StudyInstanceUID, ds.SeriesInstanceUID = self.study, self.series
        ds.SOPInstanceUID = generate_uid()
        ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
        ds.InstanceNumber = self.count
        return ds


def to_bytes(ds: Dataset) -> bytes:
    buffer = io.BytesIO()
    ds.save_as(buffer, enforce_file_format=True)
    return buffer.getvalue()


def dimse_storer(port: int, name: str, stats: Stats, stop: threading.Event) -> None:
    ae = AE(ae_title=CLIENT_AET)
    ae.dimse_timeout = 60  # a response later than this counts as lost
    ae.add_requested_context(MRImageStorage)
    ae.add_requested_context(Verification)
    source = Instances(name)
    while not stop.is_set():
        assoc = associate(ae, port, stats, "association refused")
        if assoc is None:
            time.sleep(0.5)
            continue
        for _ in range(100):  # a new association now and then, as modalities do
            if stop.is_set():
                break
            ds = source.next()
            begun = time.monotonic()
            status = assoc.send_c_store(ds)
            stats.timed("c-store", begun)
            if status and status.Status == 0:
                stats.ack(str(ds.SOPInstanceUID))
            else:
                stats.error(f"c-store status {getattr(status, 'Status', None)}")
                if not assoc.is_established:
                    break
        if assoc.is_established:
            assoc.release()


def rest_uploader(url: str, name: str, stats: Stats, stop: threading.Event) -> None:
    source = Instances(name)
    number = 0
    with requests.Session() as session:
        while not stop.is_set():
            number += 1
            ds = source.next()
            data = to_bytes(ds)
            damaged = number % 25 == 0
            if damaged:
                data = data[: len(data) // 3]
            begun = time.monotonic()
            try:
                answer = session.post(url + "/instances", data=data, timeout=60)
            except requests.RequestException as exc:
                stats.error(f"upload {type(exc).__name__}")
                continue
            stats.timed("rest upload", begun)
            if damaged:
                if answer.status_code == 400:
                    with stats.lock:
                        stats.expected_refusals += 1
                else:
                    stats.error(f"damaged upload answered {answer.status_code}")
            elif answer.status_code == 200:
                stats.ack(str(ds.SOPInstanceUID))
            else:
                locked = "database is locked" in answer.text
                stats.error("database locked" if locked else f"upload {answer.status_code}")


def finder(port: int, stats: Stats, stop: threading.Event) -> None:
    ae = AE(ae_title=CLIENT_AET)
    ae.add_requested_context(StudyRootQueryRetrieveInformationModelFind)
    query = Dataset()
    query.QueryRetrieveLevel = "STUDY"
    query.PatientID = "SOAK-*"
    query.StudyInstanceUID = ""
    query.NumberOfStudyRelatedInstances = ""
    while not stop.is_set():
        begun = time.monotonic()
        assoc = associate(ae, port, stats, "find association refused")
        if assoc is None:
            stop.wait(1)
            continue
        for status, _ in assoc.send_c_find(query, StudyRootQueryRetrieveInformationModelFind):
            if not status or status.Status not in (0x0000, 0xFF00, 0xFF01):
                stats.error(f"c-find status {getattr(status, 'Status', None)}")
                break
        assoc.release()
        stats.timed("c-find", begun)
        stop.wait(1.0)


def reader(url: str, stats: Stats, stop: threading.Event) -> None:
    rng = random.Random(1)
    with requests.Session() as session:
        while not stop.is_set():
            for operation, path in (
                ("GET /studies", "/studies"),
                ("GET /statistics", "/statistics"),
            ):
                begun = time.monotonic()
                answer = session.get(url + path, timeout=60)
                stats.timed(operation, begun)
                if answer.status_code != 200:
                    stats.error(f"{operation} {answer.status_code}")
            changes = session.get(url + "/changes", params={"last": "1"}, timeout=60).json()
            if changes["Changes"] and changes["Changes"][0]["ResourceType"] == "Instance":
                instance = changes["Changes"][0]["ID"]
                for operation, path in (
                    ("GET simplified-tags", "simplified-tags"),
                    ("GET preview", "preview"),
                ):
                    begun = time.monotonic()
                    answer = session.get(f"{url}/instances/{instance}/{path}", timeout=60)
                    stats.timed(operation, begun)
                    if answer.status_code not in (200, 404):  # 404: recycled meanwhile
                        stats.error(f"{operation} {answer.status_code}")
            stop.wait(rng.uniform(0.1, 0.3))


def start_server(storage: Path) -> tuple[subprocess.Popen, str, int]:
    http_port, dicom_port = free_port(), free_port()
    config = {
        "Name": "soak",
        "StorageDirectory": str(storage),
        "HttpPort": http_port,
        "DicomPort": dicom_port,
        "DicomAet": NODE_AET,
        "DicomModalities": {"soak": [CLIENT_AET, "127.0.0.1", free_port()]},
    }
    config_path = storage.parent / "soak.json"
    config_path.write_text(json.dumps(config))
    process = subprocess.Popen(
        [sys.executable, "-m", "workbench.cli", "serve", "--config", str(config_path)],
        cwd=REPO,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{http_port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        with contextlib.suppress(requests.RequestException):
            if requests.get(url + "/system", timeout=2).ok:
                return process, url, dicom_port
        time.sleep(0.2)
    process.kill()
    raise SystemExit("workbench serve did not start")


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))]


def report(stats: Stats, url: str, seconds: float, peak_rss: int, rss_start: int) -> int:
    listed = requests.get(url + "/instances", params={"expand": "1"}, timeout=600).json()
    present = Counter(item["MainDicomTags"]["SOPInstanceUID"] for item in listed)
    counted = requests.get(url + "/statistics", timeout=60).json()["CountInstances"]
    missing = stats.acknowledged - set(present)
    unacknowledged = set(present) - stats.acknowledged
    duplicated = sum(1 for count in present.values() if count > 1)

    print(f"\nsoak of {seconds:.0f} s against workbench serve on loopback")
    print(f"  instances stored (present)   {len(present)}  (/statistics: {counted})")
    print(
        f"  acknowledged                 {len(stats.acknowledged)}"
        f"  ({len(stats.acknowledged) / seconds:.1f}/s)"
    )
    print(f"  acknowledged but missing     {len(missing)}")
    print(f"  present, not acknowledged    {len(unacknowledged)}")
    print(f"  present more than once       {duplicated}")
    print(f"  damaged uploads refused      {stats.expected_refusals} (expected, HTTP 400)")
    print(f"  errors                       {sum(stats.errors.values())}")
    for kind, count in stats.errors.most_common():
        print(f"    {kind:<30} {count}")
    print(
        f"  server RSS                   start {rss_start / 1e6:.0f} MB, "
        f"peak {peak_rss / 1e6:.0f} MB"
    )
    fifth = seconds / 5
    print(
        f"\n  {'operation':<22}{'count':>7}{'p50 ms':>9}{'p99 ms':>9}{'max ms':>9}"
        f"{'first-fifth p50':>17}{'last-fifth p50':>16}{'ratio':>7}"
    )
    for operation, samples in sorted(stats.latencies.items()):
        values = [latency * 1000 for _, latency in samples]
        first = [lat * 1000 for at, lat in samples if at < fifth]
        last = [lat * 1000 for at, lat in samples if at >= seconds - fifth]
        p_first, p_last = percentile(first, 50), percentile(last, 50)
        print(
            f"  {operation:<22}{len(values):>7}{percentile(values, 50):>9.1f}"
            f"{percentile(values, 99):>9.1f}{max(values):>9.0f}"
            f"{p_first:>17.1f}{p_last:>16.1f}"
            f"{p_last / p_first if first and last else float('nan'):>7.2f}"
        )
    return 1 if missing or duplicated or len(present) != counted else 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=300, help="duration (default 300)")
    args = parser.parse_args(argv)

    with tempfile.TemporaryDirectory(prefix="workbench-soak-") as folder:
        process, url, dicom_port = start_server(Path(folder) / "storage")
        server = psutil.Process(process.pid)
        rss_start = peak_rss = server.memory_info().rss
        started = time.monotonic()
        stats = Stats(started)
        stop = threading.Event()
        workers = (
            [
                threading.Thread(target=dimse_storer, args=(dicom_port, f"D{i}", stats, stop))
                for i in range(2)
            ]
            + [
                threading.Thread(target=rest_uploader, args=(url, f"R{i}", stats, stop))
                for i in range(2)
            ]
            + [
                threading.Thread(target=finder, args=(dicom_port, stats, stop)),
                threading.Thread(target=reader, args=(url, stats, stop)),
            ]
        )
        for worker in workers:
            worker.start()
        traffic = args.seconds
        try:
            while time.monotonic() - started < args.seconds:
                time.sleep(1)
                peak_rss = max(peak_rss, server.memory_info().rss)
                if process.poll() is not None:
                    stats.error("server died")
                    break
        finally:
            traffic = time.monotonic() - started
            stop.set()
            for worker in workers:
                worker.join(120)
        try:
            return report(stats, url, traffic, peak_rss, rss_start)
        finally:
            process.terminate()
            process.wait(30)


if __name__ == "__main__":
    sys.exit(main())
