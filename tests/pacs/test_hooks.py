"""Python hooks on PACS events (every event delivered once, off the ingest path), and the
incoming filter (on it).

Eight DCMTK ``dcmsend`` associations store the corpus at once while the first hook call is
held: every C-STORE is acknowledged before any hook returns, then each stored instance
reaches the hook exactly once, and stable and deleted events follow.
"""

from __future__ import annotations

import subprocess
import threading
import time

import pydicom
import pytest
import requests
from pynetdicom import AE

from tests.data import dicom_files
from tests.peers import free_port, require_tool
from workbench.pacs import IncomingInstance, Refused, serve
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


def _c_store(port: int, path) -> int:
    """The status of a C-STORE of ``path`` (or a dataset) to the PACS."""
    ds = path if isinstance(path, pydicom.Dataset) else pydicom.dcmread(path)
    ae = AE(ae_title="SENDER")
    ae.add_requested_context(ds.SOPClassUID, ds.file_meta.TransferSyntaxUID)
    assoc = ae.associate("127.0.0.1", port, ae_title="HOOKS")
    assert assoc.is_established
    try:
        return int(assoc.send_c_store(ds).Status)
    finally:
        assoc.release()


def test_incoming_filter_refuses_on_every_path(pacs, sample_data):
    """One filter sees C-STORE and REST uploads alike, refuses with its status, and a
    filter that fails refuses rather than lets through."""
    ct = dicom_files(sample_data / "series_ct_philips_ingenuity_5mm")
    mr = dicom_files(sample_data / "series_mr_siemens_t1_sag_HFS")
    seen: list[IncomingInstance] = []

    @pacs.filter_incoming
    def only_ct(instance: IncomingInstance) -> bool:
        seen.append(instance)
        if instance.tags.get("PatientID") == "STOP":
            raise Refused("no research patients here", dimse_status=0xA7FF)
        return instance.tags["Modality"] == "CT"

    assert _c_store(pacs.node.port, ct[0]) == 0x0000
    assert _c_store(pacs.node.port, mr[0]) == 0x0124
    assert seen[-1].origin == "DicomProtocol" and seen[-1].remote_aet == "SENDER"
    upload = requests.post(f"{pacs.url}/instances", data=mr[1].read_bytes(), timeout=30)
    assert upload.status_code == 403 and "refused by the incoming filter" in upload.text
    stopped = pydicom.dcmread(ct[1])
    stopped.PatientID = "STOP"
    assert _c_store(pacs.node.port, stopped) == 0xA7FF
    modalities = {
        pacs.index.main_dicom_tags("Series", series)["Modality"]
        for series in pacs.index.find("Series", {})
    }
    assert modalities == {"CT"} and len(pacs.index.find("Instance", {})) == 1

    pacs.filter_incoming(lambda instance: 1 / 0)  # a broken filter refuses, never admits
    assert _c_store(pacs.node.port, ct[2]) == 0x0124
    pacs.filter_incoming(None)
    assert _c_store(pacs.node.port, mr[0]) == 0x0000
