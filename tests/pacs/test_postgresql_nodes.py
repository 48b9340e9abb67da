"""Several ``workbench serve`` processes on one PostgreSQL and one storage directory, and a
database that goes away and comes back."""

from __future__ import annotations

import io
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pydicom
import pytest
import requests
from dicomweb_client.api import DICOMwebClient

from tests.pacs.node_support import (
    NODE_AET,
    TEMPLATE,
    all_changes,
    dcmtk,
    generate_instances,
    serve_process,
    sop_uid,
    store_files,
)
from tests.peers import PostgresPeer, free_port, require_tool, start_postgres
from workbench.pacs import Config
from workbench.pacs.server import serve

PER_GROUP = 40
STABLE_AGE = 1


@dataclass
class Servers:
    """``workbench serve`` processes sharing one PostgreSQL database and one store."""

    storage: Path
    urls: list[str]
    dicom_ports: list[int]
    processes: list[subprocess.Popen]


@contextmanager
def two_servers(workdir: Path, database_url: str, **options) -> Iterator[Servers]:
    """Start two ``workbench serve`` on one database and one storage directory; stop them."""
    storage, settings = workdir / "storage", workdir / "pacs.json"
    settings.write_text(
        json.dumps({"StorageDirectory": str(storage), "DatabaseUrl": database_url, **options})
    )
    ports = [free_port(), free_port()]
    processes = []
    try:
        for n, port in enumerate(ports):
            args = ["--config", str(settings), "--http-port", "0", "--dicom-port", str(port)]
            processes.append(serve_process(workdir / f"serve{n}.log", *args, "--aet", NODE_AET))
        yield Servers(storage, [url for _, url in processes], ports, [p for p, _ in processes])
    finally:
        for process, _ in processes:
            process.send_signal(signal.SIGTERM)
        for process, _ in processes:
            process.wait(timeout=30)


def storescu(port: int, files: list[Path]) -> subprocess.Popen:
    """DCMTK's storescu sending ``files`` over one association, started in the background."""
    args = [require_tool("storescu"), "-aec", NODE_AET, "127.0.0.1", str(port)]
    return subprocess.Popen(
        [*args, *[str(path) for path in files]],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        env={**os.environ, "TCP_NODELAY": "1"},
    )


def finish(sender: subprocess.Popen) -> None:
    output, _ = sender.communicate(timeout=240)
    assert sender.returncode == 0, output.decode(errors="replace")[-2000:]


def test_two_servers_on_one_database_and_store_ingest_each_instance_once(
    tmp_path, sample_data, postgres: PostgresPeer
):
    groups = [
        generate_instances(
            sample_data / TEMPLATE, tmp_path / f"group{n}", PER_GROUP, series=2, tag=f"NODES{n}"
        )
        for n in range(4)
    ]
    with two_servers(tmp_path, postgres.new_database(), StableAge=STABLE_AGE) as servers:
        urls = servers.urls
        # Group 0 by C-STORE to the first server, group 1 to the second, each also sending
        # ten of the other's; group 2 uploaded over REST to both at once, group 3 by STOW-RS
        # to both at once, ten a request: the same instances race each other through two
        # processes.
        senders = [
            storescu(port, groups[n] + groups[1 - n][:10])
            for n, port in enumerate(servers.dicom_ports)
        ]
        answers: list[dict] = []
        stowed: list[pydicom.Dataset] = []

        def upload(url: str) -> None:
            for path in groups[2]:
                response = requests.post(f"{url}/instances", data=path.read_bytes(), timeout=60)
                answers.append({"status": response.status_code, **response.json()})

        def stow(url: str) -> None:
            client = DICOMwebClient(url=f"{url}/dicom-web")
            for start in range(0, PER_GROUP, 10):
                batch = [pydicom.dcmread(path) for path in groups[3][start : start + 10]]
                stowed.append(client.store_instances(batch))

        uploaders = [
            threading.Thread(target=send, args=(url,)) for url in urls for send in (upload, stow)
        ]
        for thread in uploaders:
            thread.start()
        for sender in senders:
            finish(sender)
        for thread in uploaders:
            thread.join(240)

        assert {answer["status"] for answer in answers} == {200}
        assert sorted(answer["Status"] for answer in answers).count("Success") == PER_GROUP
        assert len(stowed) == 2 * PER_GROUP // 10
        assert not [answer for answer in stowed if "FailedSOPSequence" in answer]
        expected = {sop_uid(path) for group in groups for path in group}
        for url in urls:  # both servers see the one index
            instances = requests.get(f"{url}/instances", params={"expand": ""}, timeout=60).json()
            stored = [instance["MainDicomTags"]["SOPInstanceUID"] for instance in instances]
            assert len(stored) == len(set(stored)) == len(expected)
            assert set(stored) == expected
            statistics = requests.get(f"{url}/statistics", timeout=30).json()
            assert statistics["CountInstances"] == len(expected)
            assert statistics["CountPatients"] == len(groups)
        # No file stored twice, none lost.
        assert len(store_files(servers.storage)) == len(expected)
        changes = all_changes(urls[1])
        new_instances = [c["ID"] for c in changes if c["ChangeType"] == "NewInstance"]
        assert len(new_instances) == len(set(new_instances)) == len(expected)
        new_patients = [c["ID"] for c in changes if c["ChangeType"] == "NewPatient"]
        assert len(new_patients) == len(set(new_patients)) == len(groups)
        sequence = [c["Seq"] for c in changes]
        assert sequence == sorted(sequence) and len(set(sequence)) == len(sequence)
        # Any file, whichever server received it, is served by either.
        for instance in instances[:: len(instances) // 5]:
            assert requests.get(f"{urls[0]}/instances/{instance['ID']}/file", timeout=30).ok

        # Each series, study and patient is announced stable by the server that received its
        # last instance, not also by the other one: a resource is announced again only after
        # an instance arrived in it since (a pause longer than StableAge on a busy machine).
        levels = {"Series": 2 * len(groups), "Study": len(groups), "Patient": len(groups)}
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            changes = all_changes(urls[0])
            if sum(c["ChangeType"] == "StablePatient" for c in changes) >= len(groups):
                break
            time.sleep(0.2)
        time.sleep(STABLE_AGE + 1)  # time enough for the other server to announce too
        parents = {}
        for level in ("instances", "series", "studies"):
            for resource in requests.get(f"{urls[0]}/{level}?expand", timeout=60).json():
                parent = next(key for key in resource if key.startswith("Parent"))
                parents[resource["ID"]] = (parent.removeprefix("Parent"), resource[parent])
        fed: set[tuple[str, str]] = set()  # resources given an instance since announced
        announced: dict[str, set[str]] = {level: set() for level in levels}
        for change in all_changes(urls[0]):
            if change["ChangeType"] == "NewInstance":
                resource = change["ID"]
                while resource in parents:
                    fed.add(parents[resource])
                    resource = parents[resource][1]
            elif change["ChangeType"].startswith("Stable"):
                key = (change["ResourceType"], change["ID"])
                assert key in fed, f"{key} announced stable twice with nothing new in between"
                fed.discard(key)
                announced[key[0]].add(key[1])
        assert {level: len(ids) for level, ids in announced.items()} == levels


def test_recycling_over_two_servers_keeps_the_limit_and_the_protected(
    tmp_path, sample_data, postgres: PostgresPeer
):
    patients = [
        generate_instances(sample_data / TEMPLATE, tmp_path / f"p{n}", 6, tag=f"RECYCLE{n}")
        for n in range(9)
    ]
    limit = 3
    with two_servers(tmp_path, postgres.new_database(), MaximumPatientCount=limit) as servers:
        urls = servers.urls
        first = requests.post(f"{urls[0]}/instances", data=patients[0][0].read_bytes(), timeout=30)
        kept = first.json()["ParentPatient"]
        assert requests.put(f"{urls[1]}/patients/{kept}/protected", data="1", timeout=30).ok
        # Four patients a server, their instances interleaved, over both servers at once:
        # each new patient beyond the limit recycles the oldest unprotected one.
        interleaved = [
            [path for row in zip(*patients[1 + n :: 2], strict=True) for path in row]
            for n in range(2)
        ]
        senders = [storescu(port, interleaved[n]) for n, port in enumerate(servers.dicom_ports)]
        for sender in senders:
            finish(sender)

        statistics = requests.get(f"{urls[0]}/statistics", timeout=30).json()
        assert statistics["CountPatients"] == limit
        assert requests.get(f"{urls[1]}/patients/{kept}/protected", timeout=30).text == "1"
        instances = requests.get(f"{urls[1]}/instances", timeout=30).json()
        assert statistics["CountInstances"] == len(instances)
        # Every row has its file and every file its row: recycling by one server never
        # removed what the other had just stored, nor left a file behind.
        assert len(store_files(servers.storage)) == len(instances)
        for instance in instances:
            assert requests.get(f"{urls[0]}/instances/{instance}/file", timeout=30).ok
        disk = sum(path.stat().st_size for path in store_files(servers.storage))
        assert int(statistics["TotalDiskSize"]) == disk


def test_a_server_killed_mid_ingest_loses_nothing_it_acknowledged(
    tmp_path, sample_data, postgres: PostgresPeer
):
    files = generate_instances(sample_data / TEMPLATE, tmp_path / "killed", 200, tag="KILLED")
    others = generate_instances(sample_data / TEMPLATE, tmp_path / "alive", 40, tag="ALIVE")
    with two_servers(tmp_path, postgres.new_database()) as servers:
        sender = subprocess.Popen(
            [
                require_tool("storescu"),
                "-v",
                "-aec",
                NODE_AET,
                "127.0.0.1",
                str(servers.dicom_ports[0]),
                *[str(path) for path in files],
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env={**os.environ, "TCP_NODELAY": "1"},
        )
        survivor = storescu(servers.dicom_ports[1], others)
        acknowledged = 0
        assert sender.stdout is not None
        for line in sender.stdout:
            if "Received Store Response (Success)" in line:
                acknowledged += 1
                if acknowledged == 60:
                    os.kill(servers.processes[0].pid, signal.SIGKILL)  # mid-stream
        sender.wait(timeout=60)
        finish(survivor)  # the other server kept serving throughout
        assert 60 <= acknowledged < len(files), "the server was not killed mid-ingest"

        url = servers.urls[1]
        for path in files[:acknowledged] + others:
            found = requests.post(f"{url}/tools/lookup", data=sop_uid(path), timeout=30).json()
            assert len(found) == 1 and found[0]["Type"] == "Instance", path
            content = requests.get(f"{url}/instances/{found[0]['ID']}/file", timeout=30).content
            assert pydicom.dcmread(io.BytesIO(content)).PixelData == pydicom.dcmread(path).PixelData


@pytest.fixture
def own_postgres():
    """A PostgreSQL cluster of the test's own, which the test stops and starts."""
    peer = start_postgres()
    yield peer
    peer.remove()


def test_database_down_answers_503_and_service_resumes(tmp_path, sample_data, own_postgres):
    files = generate_instances(sample_data / TEMPLATE, tmp_path / "files", 3, tag="DOWN")
    config = Config(
        StorageDirectory=str(tmp_path / "storage"),
        HttpPort=0,
        DicomPort=0,
        DicomAet=NODE_AET,
        DatabaseUrl=own_postgres.new_database(),
        DicomModalitiesInDatabase=True,
    )
    handle = serve(config)
    try:
        url, port = handle.url, handle.node.port
        assert requests.post(f"{url}/instances", data=files[0].read_bytes(), timeout=30).ok
        itself = [NODE_AET, "127.0.0.1", port]
        assert requests.put(f"{url}/modalities/itself", json=itself, timeout=30).ok
        own_postgres.stop()

        # The modalities known stay in use; a change cannot be kept, so it is refused.
        assert requests.get(f"{url}/modalities", timeout=30).json() == ["itself"]
        assert requests.post(f"{url}/modalities/itself/echo", json={}, timeout=30).ok
        declared = requests.put(f"{url}/modalities/other", json=itself, timeout=30)
        assert declared.status_code == 503
        assert "index database is unavailable" in declared.json()["Details"]

        listing = requests.get(f"{url}/patients", timeout=30)
        assert listing.status_code == 503
        assert "index database is unavailable" in listing.json()["Details"]
        upload = requests.post(f"{url}/instances", data=files[1].read_bytes(), timeout=30)
        assert upload.status_code == 503
        assert "index database is unavailable" in upload.json()["Details"]
        output = dcmtk(
            "storescu", "-v", "-aec", NODE_AET, "127.0.0.1", str(port), str(files[2]), check=False
        )
        assert "Refused: OutOfResources" in output, output  # 0xA700
        assert len(store_files(config.storage_path)) == 1  # nothing kept unacknowledged
        settings = tmp_path / "pacs.json"
        settings.write_text(
            json.dumps(
                {"StorageDirectory": str(tmp_path / "other"), "DatabaseUrl": config.DatabaseUrl}
            )
        )
        starting = subprocess.run(
            [
                sys.executable,
                "-m",
                "workbench.cli",
                "serve",
                "--config",
                str(settings),
                "--http-port",
                "0",
                "--no-dicom",
            ],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert starting.returncode == 1
        assert "cannot start: The index database is unavailable" in starting.stderr

        own_postgres.start()
        assert requests.get(f"{url}/patients", timeout=30).ok
        assert requests.put(f"{url}/modalities/other", json=itself, timeout=30).ok
        assert requests.get(f"{url}/modalities", timeout=30).json() == ["itself", "other"]
        for path in files[1:]:
            assert requests.post(f"{url}/instances", data=path.read_bytes(), timeout=30).ok
        dcmtk("storescu", "-aec", NODE_AET, "127.0.0.1", str(port), str(files[2]))
        stored = requests.get(f"{url}/instances", params={"expand": ""}, timeout=30).json()
        assert {i["MainDicomTags"]["SOPInstanceUID"] for i in stored} == {
            sop_uid(path) for path in files
        }
        assert len(store_files(config.storage_path)) == len(files)
        for instance in stored:
            data = requests.get(f"{url}/instances/{instance['ID']}/file", timeout=30).content
            assert pydicom.dcmread(io.BytesIO(data)).PatientID.startswith("DOWN")
    finally:
        handle.stop()
