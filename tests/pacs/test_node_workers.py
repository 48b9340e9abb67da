"""A node whose associations are served by two worker processes (``DicomWorkerProcesses``),
against DCMTK's storescu, findscu, movescu and getscu over several associations, on SQLite
and PostgreSQL: nothing lost or stored twice, every worker used, every service answered by
either, workers restarted when they die and gone when the server stops."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import threading
import time
from pathlib import Path

import pydicom
import pytest
import requests

from tests.pacs.node_support import (
    NODE_AET,
    TEMPLATE,
    all_changes,
    dcmtk,
    generate_instances,
    serve_process,
    sop_uid,
    start_storescp,
    store_files,
)
from tests.peers import free_port, require_tool
from workbench.pacs import Config, Index
from workbench.pacs.server import serve

WORKERS = 2
CALLERS = {"findscu": ["FINDSCU", "127.0.0.1", 1], "movescu": ["MOVESCU", "127.0.0.1", 1],
           "getscu": ["GETSCU", "127.0.0.1", 1]}  # fmt: skip


def storescu(port: int, files: list[Path], *extra: str) -> subprocess.Popen:
    return subprocess.Popen(
        [require_tool("storescu"), *extra, "-aec", NODE_AET, "127.0.0.1", str(port),
         *[str(path) for path in files]],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        env={**os.environ, "TCP_NODELAY": "1"},
    )  # fmt: skip


def finish(sender: subprocess.Popen) -> str:
    output, _ = sender.communicate(timeout=300)
    assert sender.returncode == 0, output[-2000:]
    return output


def empty(directory: Path) -> None:
    for path in directory.iterdir():
        path.unlink()


def handed(pacs) -> list[int]:
    """Associations handed to each worker so far."""
    return [worker["associations"] for worker in pacs.node.workers.stats()]


@pytest.fixture(scope="module")
def storescp(tmp_path_factory):
    directory = tmp_path_factory.mktemp("storescp")
    process, port = start_storescp(directory)
    yield directory, port
    process.terminate()
    process.wait(10)


@pytest.fixture(scope="module")
def pacs(tmp_path_factory, database, storescp):
    storage = tmp_path_factory.mktemp("workers")
    handle = serve(
        database.config(storage, HttpPort=0, DicomPort=free_port(), DicomAet=NODE_AET,
                        DicomWorkerProcesses=WORKERS, StableAge=1,
                        DicomModalities={**CALLERS,
                                         "storescp": ["STORESCP", "127.0.0.1", storescp[1]]}),
    )  # fmt: skip
    yield handle
    handle.stop()


@pytest.fixture(scope="module")
def received(pacs, tmp_path_factory, sample_data):
    """Four associations at once, each sending its group plus part of another's (the same
    instances racing through both workers); the stored_instance events a hook saw."""
    tmp = tmp_path_factory.mktemp("groups")
    groups = [generate_instances(sample_data / TEMPLATE, tmp / str(n), 15, series=2,
                                 tag=f"WORKERS{n}") for n in range(4)]  # fmt: skip
    events, lock = [], threading.Lock()

    def hook(event) -> None:
        with lock:
            events.append(event.id)

    pacs.on("stored_instance", hook)
    before = handed(pacs)
    senders = [storescu(pacs.node.port, groups[n] + groups[(n + 1) % 4][:5]) for n in range(4)]
    for sender in senders:
        finish(sender)
    spread = [after - earlier for after, earlier in zip(handed(pacs), before, strict=True)]
    expected = {sop_uid(path) for group in groups for path in group}
    deadline = time.monotonic() + 60
    while len(events) < len(expected) and time.monotonic() < deadline:
        time.sleep(0.1)
    time.sleep(1.5)  # time for a second (wrong) event of any instance to show
    return groups, expected, list(events), spread


def test_associations_spread_over_the_workers_store_each_instance_once(pacs, received):
    _groups, expected, events, spread = received
    # Four associations at once over two workers: each used (the least busy takes the next).
    assert sum(spread) == 4 and min(spread) >= 1
    assert len({worker["pid"] for worker in pacs.node.workers.stats()} | {os.getpid()}) == 3
    stored = [
        i["MainDicomTags"]["SOPInstanceUID"]
        for i in requests.get(f"{pacs.url}/instances?expand", timeout=60).json()
    ]
    assert len(stored) == len(set(stored)) == len(expected)
    assert set(stored) == expected
    assert len(store_files(pacs.config.storage_path)) == len(expected)
    changes = all_changes(pacs.url)
    new = [c["ID"] for c in changes if c["ChangeType"] == "NewInstance"]
    assert len(new) == len(set(new)) == len(expected)
    # The server process's hooks see every worker's instances, each once.
    assert sorted(events) == sorted(new)


def test_find_move_get_from_either_worker(pacs, received, storescp, tmp_path):
    groups, _expected, _events, _spread = received
    study = str(pydicom.dcmread(groups[0][0]).StudyInstanceUID)
    before = handed(pacs)
    for n in range(2):  # one after the other: the first to each worker
        out = tmp_path / f"find{n}"
        out.mkdir()
        dcmtk("findscu", "-S", "-aet", "FINDSCU", "-aec", NODE_AET, "-X", "-od", str(out),
              "-k", "QueryRetrieveLevel=SERIES", "-k", f"StudyInstanceUID={study}",
              "-k", "SeriesInstanceUID", "-k", "NumberOfSeriesRelatedInstances",
              "127.0.0.1", str(pacs.node.port))  # fmt: skip
        answers = [pydicom.dcmread(path) for path in out.glob("rsp*.dcm")]
        assert sorted(int(a.NumberOfSeriesRelatedInstances) for a in answers) == [7, 8]

    directory, _ = storescp
    for n in range(2):
        empty(directory)
        dcmtk("movescu", "-S", "-aet", "MOVESCU", "-aem", "STORESCP", "-aec", NODE_AET,
              "-k", "QueryRetrieveLevel=STUDY", "-k", f"StudyInstanceUID={study}",
              "127.0.0.1", str(pacs.node.port))  # fmt: skip
        moved = {sop_uid(path) for path in directory.iterdir()}
        assert moved == {sop_uid(path) for path in groups[0]}
        # C-MOVE only to declared destinations, whichever worker answers.
        refused = dcmtk("movescu", "-v", "-S", "-aet", "MOVESCU", "-aem", "NOWHERE",
                        "-aec", NODE_AET, "-k", "QueryRetrieveLevel=STUDY",
                        "-k", f"StudyInstanceUID={study}", "127.0.0.1", str(pacs.node.port),
                        check=False)  # fmt: skip
        assert "Refused: MoveDestinationUnknown" in refused, refused

        out = tmp_path / f"get{n}"
        out.mkdir()
        dcmtk("getscu", "-S", "-aet", "GETSCU", "-aec", NODE_AET, "-od", str(out),
              "-k", "QueryRetrieveLevel=STUDY", "-k", f"StudyInstanceUID={study}",
              "127.0.0.1", str(pacs.node.port))  # fmt: skip
        assert {sop_uid(path) for path in out.iterdir()} == {sop_uid(p) for p in groups[0]}
    # Eight associations one after the other, taken in turn.
    spread = [b - a for a, b in zip(before, handed(pacs), strict=True)]
    assert sum(spread) == 8 and min(spread) >= 1


def test_modalities_declared_over_rest_reach_the_workers(pacs, received, storescp):
    groups, _expected, _events, _spread = received
    study = str(pydicom.dcmread(groups[1][0]).StudyInstanceUID)
    directory, port = storescp
    move = ["movescu", "-v", "-S", "-aet", "MOVESCU", "-aem", "LATE", "-aec", NODE_AET,
            "-k", "QueryRetrieveLevel=STUDY", "-k", f"StudyInstanceUID={study}",
            "127.0.0.1", str(pacs.node.port)]  # fmt: skip
    declared = requests.put(
        f"{pacs.url}/modalities/late",
        timeout=30,
        json={"AET": "LATE", "Host": "127.0.0.1", "Port": port},
    )
    assert declared.ok, declared.text
    for _ in range(WORKERS):  # each worker in turn
        empty(directory)
        dcmtk(*move)
        assert len(list(directory.iterdir())) == len(groups[1])
    assert requests.delete(f"{pacs.url}/modalities/late", timeout=30).ok
    for _ in range(WORKERS):
        assert "Refused: MoveDestinationUnknown" in dcmtk(*move, check=False)


def test_storage_commitment_both_ways(pacs, received, tmp_path):
    groups, _expected, _events, _spread = received
    instances = [
        [str(h.SOPClassUID), str(h.SOPInstanceUID)]
        for h in (pydicom.dcmread(p, stop_before_pixels=True) for p in groups[2])
    ]
    with serve(
        StorageDirectory=str(tmp_path / "peer"),
        HttpPort=0,
        DicomPort=free_port(),
        DicomAet="PEER",
        DicomModalities={"workers": [NODE_AET, "127.0.0.1", pacs.node.port]},
    ) as peer:
        peer.index.import_path(*groups[2], progress=False)
        requests.put(
            f"{pacs.url}/modalities/peer",
            timeout=30,
            json={"AET": "PEER", "Host": "127.0.0.1", "Port": peer.node.port},
        ).raise_for_status()
        body = {"DicomInstances": instances}
        for _ in range(WORKERS):
            # The peer asks us: a worker answers and sends the report.
            asked = requests.post(f"{peer.url}/modalities/workers/storage-commitment",
                                  json=body, timeout=60)  # fmt: skip
            assert wait_for_report(peer.url, asked.json()["Path"])["Status"] == "Success"
            # We ask the peer: its report comes to a worker, which relays it here.
            ours = requests.post(f"{pacs.url}/modalities/peer/storage-commitment",
                                 json=body, timeout=60)  # fmt: skip
            report = wait_for_report(pacs.url, ours.json()["Path"])
            assert report["Status"] == "Success"
            assert len(report["Success"]) == len(instances)
        requests.delete(f"{pacs.url}/modalities/peer", timeout=30)


def wait_for_report(url: str, path: str) -> dict:
    deadline = time.monotonic() + 60
    while True:
        report = requests.get(url + path, timeout=30).json()
        if report["Status"] != "Pending" or time.monotonic() > deadline:
            return report
        time.sleep(0.1)


def test_an_incoming_filter_cannot_be_set_with_workers(pacs):
    with pytest.raises(ValueError, match="DicomWorkerProcesses"):
        pacs.filter_incoming(lambda instance: True)


# -- processes -------------------------------------------------------------------------------


def children(pid: int) -> set[int]:
    """The live child processes of ``pid`` (DICOM workers, the STOW-RS header helper)."""
    found: set[int] = set()
    for task in Path(f"/proc/{pid}/task").iterdir():
        found |= {int(child) for child in (task / "children").read_text().split()}
    return {child for child in found if alive(child)}


def workers_of(pid: int) -> set[int]:
    """The live DICOM worker processes of the server ``pid``."""
    return {child for child in children(pid) if b"workbench.pacs.node.worker" in _command(child)}


def _command(pid: int) -> bytes:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes()
    except (FileNotFoundError, ProcessLookupError):
        return b""


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError):
        return False
    return state != "Z"


def wait_until(condition, timeout: float = 60) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.1)
    return condition()


def test_workers_restart_when_killed_and_stop_with_the_server(tmp_path, sample_data, database):
    files = generate_instances(sample_data / TEMPLATE, tmp_path / "files", 300, tag="STOP")
    storage, settings = tmp_path / "storage", tmp_path / "pacs.json"
    settings.write_text(json.dumps({"StorageDirectory": str(storage),
                                    "DatabaseUrl": database.new_url()}))  # fmt: skip
    port = free_port()
    process, _url = serve_process(tmp_path / "serve.log", "--config", str(settings),
                                 "--http-port", "0", "--dicom-port", str(port), "--aet",
                                 NODE_AET, "--dicom-workers", str(WORKERS))  # fmt: skip
    try:
        workers = workers_of(process.pid)
        assert len(workers) == WORKERS
        # A worker killed outright is replaced, and the node serves on.
        os.kill(min(workers), signal.SIGKILL)
        assert wait_until(lambda: len(workers_of(process.pid)) == WORKERS
                          and min(workers) not in workers_of(process.pid))  # fmt: skip
        log = tmp_path / "serve.log"
        assert wait_until(lambda: "starting it again" in log.read_text(), timeout=30), (
            f"no restart logged; workers now {workers_of(process.pid)} (killed {min(workers)})"
            f":\n{log.read_text()[-3000:]}"
        )
        finish(storescu(port, files[:10]))
        # Stopped while associations send: each worker finishes or aborts its own, and
        # whatever was acknowledged is stored.
        senders = [storescu(port, files[10 + n :: 2], "-v") for n in range(2)]
        assert wait_until(lambda: len(store_files(storage)) > 40)
        workers = children(process.pid)  # the header helper too: none may stay behind
        process.send_signal(signal.SIGTERM)
        assert process.wait(120) == 0
        outputs = [sender.communicate(timeout=120)[0] for sender in senders]
    finally:
        if process.poll() is None:
            process.kill()
    assert not [pid for pid in workers if alive(pid)]
    acknowledged = []
    for n, output in enumerate(outputs):
        successes = output.count("Received Store Response (Success)")
        acknowledged += files[10 + n :: 2][:successes]
    index = Index(Config.load(settings), reconcile=False)
    try:
        stored = {index.main_dicom_tags("Instance", i)["SOPInstanceUID"]
                  for i in index.list_ids("Instance")}  # fmt: skip
        assert {sop_uid(path) for path in files[:10] + acknowledged} <= stored
        assert len(store_files(storage)) == len(stored)
    finally:
        index.close()


def test_stop_aborts_associations_in_progress_and_keeps_what_was_acknowledged(
    tmp_path, sample_data, database
):
    files = generate_instances(sample_data / TEMPLATE, tmp_path / "files", 300, tag="ABORT")
    pacs = serve(database.config(tmp_path / "storage", HttpPort=0, DicomPort=free_port(),
                                 DicomAet=NODE_AET, DicomWorkerProcesses=WORKERS))  # fmt: skip
    workers = [worker["pid"] for worker in pacs.node.workers.stats()]
    try:
        shares = [files[n::2] for n in range(2)]
        senders = [storescu(pacs.node.port, share, "-v") for share in shares]
        assert wait_until(lambda: len(store_files(pacs.config.storage_path)) > 40)
    finally:
        pacs.stop(grace=0)  # abort the associations at once
    assert not [pid for pid in workers if alive(pid)]
    outputs = [sender.communicate(timeout=120)[0] for sender in senders]
    counts = [output.count("Received Store Response (Success)") for output in outputs]
    assert sum(counts) < len(files), "the stop came after every instance was sent"
    acknowledged = [path for share, count in zip(shares, counts, strict=True)
                    for path in share[:count]]  # fmt: skip
    index = Index(database_config(pacs.config), reconcile=False)
    try:
        stored = {index.main_dicom_tags("Instance", i)["SOPInstanceUID"]
                  for i in index.list_ids("Instance")}  # fmt: skip
        assert {sop_uid(path) for path in acknowledged} <= stored
        # Rows and files agree: no aborted instance left half stored.
        assert len(store_files(pacs.config.storage_path)) == len(stored)
    finally:
        index.close()


def database_config(config: Config) -> Config:
    return Config(StorageDirectory=config.StorageDirectory, DatabaseUrl=config.DatabaseUrl)


def test_workers_leave_when_their_server_is_killed(tmp_path, database):
    settings = tmp_path / "pacs.json"
    settings.write_text(json.dumps({"StorageDirectory": str(tmp_path / "storage"),
                                    "DatabaseUrl": database.new_url()}))  # fmt: skip
    process, _url = serve_process(tmp_path / "serve.log", "--config", str(settings),
                                  "--http-port", "0", "--dicom-port", str(free_port()),
                                  "--dicom-workers", str(WORKERS))  # fmt: skip
    assert len(workers_of(process.pid)) == WORKERS
    everyone = children(process.pid)  # the workers and the STOW-RS header helper
    assert len(everyone) == WORKERS + 1
    process.kill()
    process.wait(30)
    assert wait_until(lambda: not [pid for pid in everyone if alive(pid)])


@pytest.mark.parametrize("count", [0, -2, 1.5, "2", True])
def test_a_worker_count_that_is_no_whole_number_above_zero_is_refused(tmp_path, count):
    with pytest.raises(ValueError, match=f"DicomWorkerProcesses must be .* not {count!r}"):
        serve(
            StorageDirectory=str(tmp_path),
            HttpPort=0,
            DicomPort=free_port(),
            DicomWorkerProcesses=count,
        )


def test_sqlite_writers_of_every_process_queue_on_one_lock_file(tmp_path, sample_data):
    """Writers wait for the lock file's holder (here this test, as another process would be)
    and go on once it lets go, rather than polling SQLite's lock."""
    import fcntl

    files = generate_instances(sample_data / TEMPLATE, tmp_path / "files", 2, tag="LOCK")
    index = Index(Config(StorageDirectory=str(tmp_path / "storage")))
    try:
        lock = (tmp_path / "storage" / "index.sqlite.writers.lock").open("a")
        fcntl.flock(lock, fcntl.LOCK_EX)
        writer = threading.Thread(target=index.ingest_file, args=(files[0],))
        writer.start()
        writer.join(1.0)
        assert writer.is_alive() and not index.list_ids("Instance")
        fcntl.flock(lock, fcntl.LOCK_UN)
        writer.join(60)
        assert len(index.list_ids("Instance")) == 1
        index.ingest_file(files[1])  # and the lock is free again after each commit
        assert len(index.list_ids("Instance")) == 2
        lock.close()
    finally:
        index.close()
