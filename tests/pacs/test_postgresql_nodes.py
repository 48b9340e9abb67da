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
from pathlib import Path

import pydicom
import pytest
import requests

from tests.pacs.node_support import (
    NODE_AET,
    TEMPLATE,
    dcmtk,
    generate_instances,
    serve_process,
    sop_uid,
)
from tests.peers import PostgresPeer, free_port, require_tool, start_postgres
from workbench.pacs import Config
from workbench.pacs.server import serve

PER_GROUP = 40


def store_files(storage: Path) -> list[Path]:
    """The files of the store (its UUID-named files, not the incoming or lock files)."""
    return [path for path in storage.glob("??/??/*") if path.is_file()]


def all_changes(url: str) -> list[dict]:
    changes, since = [], 0
    while True:
        page = requests.get(
            f"{url}/changes", params={"since": since, "limit": 100}, timeout=30
        ).json()
        changes += page["Changes"]
        since = page["Last"]
        if page["Done"]:
            return changes


def test_two_servers_on_one_database_and_store_ingest_each_instance_once(
    tmp_path, sample_data, postgres: PostgresPeer
):
    groups = [
        generate_instances(
            sample_data / TEMPLATE, tmp_path / f"group{n}", PER_GROUP, series=2, tag=f"NODES{n}"
        )
        for n in range(3)
    ]
    storage = tmp_path / "storage"
    config = tmp_path / "pacs.json"
    config.write_text(
        json.dumps(
            {
                "StorageDirectory": str(storage),
                "DatabaseUrl": postgres.new_database(),
                "StableAge": 1,
            }
        )
    )
    ports = [free_port(), free_port()]
    servers = [
        serve_process(
            tmp_path / f"serve{n}.log",
            "--config",
            str(config),
            "--http-port",
            "0",
            "--dicom-port",
            str(port),
            "--aet",
            NODE_AET,
        )
        for n, port in enumerate(ports)
    ]
    urls = [url for _, url in servers]
    try:
        # Group 0 by C-STORE to the first server, group 1 to the second, each also sending
        # ten of the other's; group 2 uploaded over REST to both at once: the same instances
        # race each other through two processes.
        env = {**os.environ, "TCP_NODELAY": "1"}
        senders = [
            subprocess.Popen(
                [
                    require_tool("storescu"),
                    "-aec",
                    NODE_AET,
                    "127.0.0.1",
                    str(port),
                    *[str(path) for path in groups[n] + groups[1 - n][:10]],
                ],
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                env=env,
            )
            for n, port in enumerate(ports)
        ]
        answers: list[dict] = []

        def upload(url: str) -> None:
            for path in groups[2]:
                response = requests.post(f"{url}/instances", data=path.read_bytes(), timeout=60)
                answers.append({"status": response.status_code, **response.json()})

        uploaders = [threading.Thread(target=upload, args=(url,)) for url in urls]
        for thread in uploaders:
            thread.start()
        for sender in senders:
            output, _ = sender.communicate(timeout=240)
            assert sender.returncode == 0, output.decode(errors="replace")[-2000:]
        for thread in uploaders:
            thread.join(240)

        assert {answer["status"] for answer in answers} == {200}
        assert sorted(answer["Status"] for answer in answers).count("Success") == PER_GROUP
        expected = {sop_uid(path) for group in groups for path in group}
        for url in urls:  # both servers see the one index
            instances = requests.get(f"{url}/instances", params={"expand": ""}, timeout=60).json()
            stored = [instance["MainDicomTags"]["SOPInstanceUID"] for instance in instances]
            assert len(stored) == len(set(stored)) == len(expected)
            assert set(stored) == expected
            statistics = requests.get(f"{url}/statistics", timeout=30).json()
            assert statistics["CountInstances"] == len(expected)
            assert statistics["CountPatients"] == len(groups)
        assert len(store_files(storage)) == len(expected)  # no file stored twice, none lost
        changes = all_changes(urls[1])
        new_instances = [c["ID"] for c in changes if c["ChangeType"] == "NewInstance"]
        assert len(new_instances) == len(set(new_instances)) == len(expected)
        new_patients = [c["ID"] for c in changes if c["ChangeType"] == "NewPatient"]
        assert len(new_patients) == len(set(new_patients)) == len(groups)
        sequence = [c["Seq"] for c in changes]
        assert sequence == sorted(sequence) and len(set(sequence)) == len(sequence)
        # Any file, whichever server received it, is served by either.
        some = instances[:: len(instances) // 5]
        for instance in some:
            content = requests.get(f"{urls[0]}/instances/{instance['ID']}/file", timeout=30)
            assert content.ok
    finally:
        for process, _ in servers:
            process.send_signal(signal.SIGTERM)
        for process, _ in servers:
            process.wait(timeout=30)


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
    )
    handle = serve(config)
    try:
        url, port = handle.url, handle.node.port
        assert requests.post(f"{url}/instances", data=files[0].read_bytes(), timeout=30).ok
        own_postgres.stop()

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
