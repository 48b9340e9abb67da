"""Python hooks on PACS events: every event delivered once, off the ingest path.

Eight DCMTK ``dcmsend`` associations store the corpus at once while the first hook call is
held: every C-STORE is acknowledged before any hook returns, then each stored instance
reaches the hook exactly once, and stable and deleted events follow.
"""

from __future__ import annotations

import subprocess
import threading
import time

import pytest

from tests.data import dicom_files
from tests.peers import free_port, require_tool
from workbench.pacs import serve
from workbench.pacs.hooks import PacsEvent

ASSOCIATIONS = 8


@pytest.fixture
def pacs(tmp_path):
    handle = serve(
        StorageDirectory=str(tmp_path / "store"),
        HttpPort=0,
        DicomPort=free_port(),
        DicomAet="HOOKS",
        StableAge=1,
    )
    yield handle
    handle.stop()


def _wait_for(condition, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "the hooks did not catch up"
        time.sleep(0.05)


def test_every_event_once_and_acknowledgements_never_wait(pacs, data_root):
    dcmsend = require_tool("dcmsend")
    files = dicom_files(data_root)
    held, release = threading.Event(), threading.Event()
    stored: list[str] = []
    stable: dict[str, set[str]] = {"Series": set(), "Study": set()}
    lock = threading.Lock()

    @pacs.on("stored_instance")
    def collect(event: PacsEvent) -> None:
        assert event.level == "Instance"
        held.set()
        release.wait(60)  # a hook far slower than the stores
        with lock:
            stored.append(event.id)

    def failing(event: PacsEvent) -> None:
        raise RuntimeError("a broken hook must not stop the others")

    pacs.on("stored_instance", failing)
    pacs.on("stable_series", lambda event: stable["Series"].add(event.id))
    pacs.on("stable_study", lambda event: stable["Study"].add(event.id))

    groups = [files[start::ASSOCIATIONS] for start in range(ASSOCIATIONS)]
    senders = [
        subprocess.Popen(
            [dcmsend, "-aec", "HOOKS", "127.0.0.1", str(pacs.node.port), *map(str, group)],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )
        for group in groups
    ]
    outputs = [sender.communicate(timeout=300)[0].decode() for sender in senders]
    assert all(sender.returncode == 0 for sender in senders), outputs
    # Every store was acknowledged while the first hook call was still held.
    assert held.wait(30) and not stored
    instances = pacs.index.find("Instance", {})
    assert len(instances) > 50

    release.set()
    _wait_for(lambda: len(stored) >= len(instances))
    assert sorted(stored) == sorted(instances)  # each once
    _wait_for(lambda: stable["Series"] == set(pacs.index.find("Series", {})))
    _wait_for(lambda: stable["Study"] == set(pacs.index.find("Study", {})))


def test_deleted_and_unknown_events(pacs, sample_data):
    deleted: list[tuple[str, str]] = []
    pacs.on("deleted", lambda event: deleted.append((event.level, event.id)))
    (path, *_) = dicom_files(sample_data / "series_ct_philips_ingenuity_5mm")
    pacs.index.ingest_bytes(path.read_bytes())
    study = pacs.index.find("Study", {})[0]
    pacs.index.delete("Study", study)
    _wait_for(lambda: ("Study", study) in deleted)
    with pytest.raises(ValueError, match="unknown event 'stored'"):
        pacs.on("stored", print)
