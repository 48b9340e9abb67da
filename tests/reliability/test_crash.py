"""``kill -9`` during ingest: after a restart every acknowledged instance is present and
readable, nothing half-written is served, and the start-up reconcile says what it repaired;
the same when the SQLite WAL also loses its unsynced tail, as in a power cut."""

from __future__ import annotations

import io
import os
import random
import re
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

import pydicom
import pytest
import requests
from pydicom.uid import generate_uid

from tests.reliability.support import (
    NODE_AET,
    ServerProcess,
    associate,
    client_ae,
    instance_uids,
    retag,
    server_config,
    store_status,
    stored_files,
    template,
    to_bytes,
)

pytestmark = pytest.mark.slow  # servers killed and restarted

ROUNDS = 3
SEED = 7
WRITERS_PER_PROTOCOL = 2
RECONCILE = re.compile(
    r"reconcile (\d+) incomplete write\(s\) removed, (\d+) row\(s\) without file removed, "
    r"(\d+) file\(s\) without row re-indexed, (\d+) unreadable file\(s\) quarantined"
)


class Ingest:
    """Writers sending fresh instances until the server dies; what was acknowledged, kept."""

    def __init__(self, server, round_number: int) -> None:
        self.server = server
        self.round = round_number
        self.acknowledged: dict[str, bytes | None] = {}  # SOP UID -> bytes sent (REST only)
        self.lock = threading.Lock()
        self.threads = [
            threading.Thread(target=self._rest, args=(i,), daemon=True)
            for i in range(WRITERS_PER_PROTOCOL)
        ]
        self.threads += [
            threading.Thread(target=self._dimse, args=(i,), daemon=True)
            for i in range(WRITERS_PER_PROTOCOL)
        ]

    def _instances(self, writer: str):
        ds = template()
        study, series = generate_uid(), generate_uid()
        number = 0
        while True:
            number += 1
            yield retag(
                ds,
                patient=f"CRASH-{self.round}-{writer}",
                study=study,
                series=series,
                number=number,
            )

    def _rest(self, index: int) -> None:
        with requests.Session() as session:
            for ds in self._instances(f"rest{index}"):
                data = to_bytes(ds)
                try:
                    answer = session.post(self.server.url + "/instances", data=data, timeout=30)
                except requests.RequestException:
                    return  # the server is gone
                if answer.status_code == 200 and answer.json()["Status"] == "Success":
                    with self.lock:
                        self.acknowledged[str(ds.SOPInstanceUID)] = data

    def _dimse(self, index: int) -> None:
        ae = client_ae()
        ae.dimse_timeout = ae.network_timeout = 10
        assoc = associate(ae, self.server.dicom_port)
        if not assoc.is_established:
            return
        for ds in self._instances(f"dimse{index}"):
            try:
                status = store_status(assoc, ds)
            except Exception:  # the association died with the server
                return
            if status is None:
                return
            if status == 0:
                with self.lock:
                    self.acknowledged[str(ds.SOPInstanceUID)] = None

    def start(self) -> None:
        for thread in self.threads:
            thread.start()

    def join(self) -> None:
        for thread in self.threads:
            thread.join(60)
            assert not thread.is_alive(), "a writer hangs after the server was killed"


def _plant_damage(server) -> dict[str, int]:
    """What a crash (or a disk) can leave besides interrupted ingests, one of each kind."""
    incoming = server.storage / "incoming"
    incoming.mkdir(exist_ok=True)
    (incoming / "interrupted.part").write_bytes(to_bytes(template())[:3000])
    orphan = retag(template(), patient="CRASH-ORPHAN", study=generate_uid(), series=generate_uid())
    name = str(uuid.uuid4())
    target = server.storage / name[:2] / name[2:4] / name
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_bytes(to_bytes(orphan))
    garbage = str(uuid.uuid4())
    target = server.storage / garbage[:2] / garbage[2:4] / garbage
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_bytes(b"\0" * 128 + b"DICM" + b"\x02\x00" * 50)
    return {"incomplete": 1, "reindexed": 1, "quarantined": 1, "orphan": orphan.SOPInstanceUID}


def _check_store(server, acknowledged: dict[str, bytes | None]) -> None:
    listed = server.get("/instances", params={"expand": "1"}).json()
    present = {}
    for item in listed:
        uid = item["MainDicomTags"]["SOPInstanceUID"]
        assert uid not in present, f"{uid} present twice"
        present[uid] = item["ID"]
    missing = set(acknowledged) - set(present)
    assert not missing, f"{len(missing)} acknowledged instances lost, e.g. {sorted(missing)[:3]}"
    pixels = template().PixelData
    for uid, instance_id in present.items():
        data = server.get(f"/instances/{instance_id}/file").content
        if acknowledged.get(uid) is not None:
            assert data == acknowledged[uid], f"{uid} differs from what was uploaded"
            continue
        ds = pydicom.dcmread(io.BytesIO(data))  # complete, not cut short
        assert str(ds.SOPInstanceUID) == uid
        assert ds.PixelData == pixels, f"{uid} was served half-written"
    statistics = server.get("/statistics").json()
    files = stored_files(server.storage)
    assert statistics["CountInstances"] == len(present) == len(files)
    assert int(statistics["TotalDiskSize"]) == sum(path.stat().st_size for path in files)
    assert not list((server.storage / "incoming").iterdir())


def test_kill_9_during_ingest_loses_nothing_acknowledged(server):
    rng = random.Random(SEED)
    acknowledged: dict[str, bytes | None] = {}
    for round_number in range(ROUNDS):
        ingest = Ingest(server, round_number)
        ingest.start()
        time.sleep(rng.uniform(0.8, 3.0))
        server.kill()
        ingest.join()
        acknowledged.update(ingest.acknowledged)
        assert ingest.acknowledged, "nothing was acknowledged before the kill"
        planted = _plant_damage(server)

        server.start()
        report = [RECONCILE.search(line) for line in server.startup_lines]
        report = [match for match in report if match]
        assert report, "restart did not report a reconcile:\n" + "\n".join(server.startup_lines)
        incomplete, _rows, reindexed, quarantined = map(int, report[0].groups())
        assert incomplete >= planted["incomplete"]
        assert reindexed >= planted["reindexed"]
        assert quarantined >= planted["quarantined"]
        found = server.post("/tools/lookup", data=planted["orphan"]).json()
        assert [item["Type"] for item in found] == ["Instance"], (
            "a file without its row was not re-indexed"
        )
        _check_store(server, acknowledged)
    print(f"{len(acknowledged)} instances acknowledged over {ROUNDS} kill -9 rounds")


# ------------------------------------------------------------------- a lost tail of the WAL
STORESCU_FILES = 1500
WAL_HEADER, FRAME_HEADER = 32, 24
SHM_MAX_FRAME, SHM_BACKFILL_ATTEMPTED = 16, 128  # byte offsets in SQLite's wal-index


def _lose_unsynced_wal(database: Path) -> int:
    """Cut a killed server's SQLite WAL back to what survives a power cut with
    ``synchronous=NORMAL``: SQLite syncs the WAL only when a checkpoint starts, so every
    frame past the last checkpoint's is gone. Returns how many frames were dropped."""
    wal = database.with_name(database.name + "-wal")
    shm = database.with_name(database.name + "-shm")
    index = shm.read_bytes()
    max_frame = int.from_bytes(index[SHM_MAX_FRAME : SHM_MAX_FRAME + 4], sys.byteorder)
    synced = int.from_bytes(
        index[SHM_BACKFILL_ATTEMPTED : SHM_BACKFILL_ATTEMPTED + 4], sys.byteorder
    )
    with open(wal, "r+b") as handle:
        page_size = int.from_bytes(handle.read(WAL_HEADER)[8:12], "big")
        handle.truncate(WAL_HEADER + synced * (FRAME_HEADER + page_size) if synced else 0)
    shm.unlink()  # rebuilt from the WAL by the next process, as after a reboot
    return max_frame - synced


class StorescuIngest(threading.Thread):
    """DCMTK ``storescu`` sending fresh files over one association until the server dies;
    which of them it reported stored (``Received Store Response (Success)``)."""

    def __init__(self, server, workdir: Path) -> None:
        super().__init__(daemon=True)
        self.server = server
        self.files: dict[str, str] = {}  # path -> SOP Instance UID
        workdir.mkdir()
        ds = template()
        study, series = generate_uid(), generate_uid()
        for number in range(STORESCU_FILES):
            retag(ds, patient="CRASH-STORESCU", study=study, series=series, number=number)
            path = workdir / f"{number:05d}.dcm"
            ds.save_as(path, enforce_file_format=True)
            self.files[str(path)] = str(ds.SOPInstanceUID)
        self.acknowledged: dict[str, None] = {}

    def run(self) -> None:
        done = subprocess.run(
            [
                "storescu",
                "-v",
                "-aec",
                NODE_AET,
                "127.0.0.1",
                str(self.server.dicom_port),
                *self.files,
            ],
            capture_output=True,
            text=True,
            timeout=300,
            env={**os.environ, "TCP_NODELAY": "1"},
        )
        sending = None
        for line in done.stdout.splitlines() + done.stderr.splitlines():
            if line.startswith("I: Sending file: "):
                sending = line.removeprefix("I: Sending file: ")
            elif line.startswith("I: Received Store Response (Success)") and sending:
                self.acknowledged[self.files[sending]] = None


def test_lost_wal_tail_after_kill_9_is_repaired_from_the_files(server, tmp_path):
    """SQLite commits without syncing its WAL (``synchronous=NORMAL``): a power cut may
    lose the last commits, never a file, which was fsynced before its acknowledgement; the
    restart re-indexes those files."""
    acknowledged: dict[str, bytes | None] = {}
    writers = Ingest(server, round_number=ROUNDS + 1)
    storescu = StorescuIngest(server, tmp_path / "storescu")
    writers.start()
    storescu.start()
    time.sleep(random.Random(SEED).uniform(2.0, 3.0))
    server.kill()
    writers.join()
    storescu.join(60)
    assert not storescu.is_alive()
    acknowledged.update(writers.acknowledged)
    acknowledged.update(storescu.acknowledged)
    assert writers.acknowledged and storescu.acknowledged, "nothing acknowledged before the kill"
    dropped = _lose_unsynced_wal(server.storage / "index.sqlite")
    assert dropped > 0, "the WAL held no commit past the last checkpoint"

    server.start()
    report = [match for line in server.startup_lines if (match := RECONCILE.search(line))]
    assert report, "restart did not report a reconcile:\n" + "\n".join(server.startup_lines)
    assert int(report[0].group(3)) > 0, "no file of a lost commit was re-indexed"
    _check_store(server, acknowledged)
    print(
        f"{len(acknowledged)} instances acknowledged, {dropped} WAL frames lost, "
        f"{report[0].group(3)} files re-indexed"
    )


def _large_file(tmp_path: Path) -> Path:
    large = template()
    large.Rows = large.Columns = 4096
    large.PixelData = bytes(4096 * 4096 * 2)  # 32 MB: received over many PDUs
    path = tmp_path / "large.dcm"
    large.save_as(path, enforce_file_format=True)
    return path


def _seen_while_received(incoming: Path, sender: threading.Thread) -> None:
    """Wait until a data set is being received in ``incoming``."""
    deadline = time.monotonic() + 60
    while not [p for p in incoming.iterdir() if p.suffix == ".dcm"]:
        assert sender.is_alive(), "the data set was received before it was seen"
        assert time.monotonic() < deadline, "no data set is being received in incoming/"
        time.sleep(0.001)


def test_a_data_set_cut_short_by_kill_9_is_left_in_the_store_not_in_tmp(tmp_path):
    """The server receives C-STORE data sets in its store's ``incoming`` directory, not in
    the system's temporary one (where a file could not be hard-linked into the store from
    another filesystem, and a killed server's files stayed): start-up clears them."""
    system_tmp = tmp_path / "system-tmp"
    system_tmp.mkdir()
    server = ServerProcess(tmp_path, server_config(tmp_path / "storage"),
                           environment={"TMPDIR": str(system_tmp)}).start()  # fmt: skip
    incoming = server.storage / "incoming"
    try:
        assoc = associate(client_ae(), server.dicom_port)
        assert assoc.is_established
        sender = threading.Thread(target=store_status, args=(assoc, _large_file(tmp_path)),
                                  daemon=True)  # fmt: skip
        try:
            sender.start()
            _seen_while_received(incoming, sender)
            server.kill()
        finally:
            sender.join(60)
            assoc.abort()
        assert [p.suffix for p in incoming.iterdir()] == [".dcm"]
        assert not list(system_tmp.iterdir())
        server.start()
        report = [match for line in server.startup_lines if (match := RECONCILE.search(line))]
        assert report and int(report[0].group(1)) == 1, "\n".join(server.startup_lines)
        assert not list(incoming.iterdir())
    finally:
        server.stop()


def test_dicom_worker_processes_receive_in_the_store_too(tmp_path):
    system_tmp = tmp_path / "system-tmp"
    system_tmp.mkdir()
    server = ServerProcess(tmp_path, server_config(tmp_path / "storage", DicomWorkerProcesses=2),
                           environment={"TMPDIR": str(system_tmp)}).start()  # fmt: skip
    try:
        assoc = associate(client_ae(), server.dicom_port)
        assert assoc.is_established
        statuses: list[int | None] = []
        sender = threading.Thread(target=lambda: statuses.append(
            store_status(assoc, _large_file(tmp_path))), daemon=True)  # fmt: skip
        sender.start()
        _seen_while_received(server.storage / "incoming", sender)
        sender.join(60)
        assoc.release()
        assert statuses == [0x0000]
        assert not list(system_tmp.iterdir())
        assert len(instance_uids(server)) == 1
    finally:
        server.stop()
