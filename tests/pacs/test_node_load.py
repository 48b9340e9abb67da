"""Several associations at once, and a node killed with SIGKILL in the middle of ingest."""

from __future__ import annotations

import io
import os
import signal
import subprocess
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
    start_node,
)
from tests.peers import free_port, require_tool

pytestmark = pytest.mark.peers

ASSOCIATIONS = 8
PER_ASSOCIATION = 100


def test_eight_concurrent_storescu_each_instance_once(tmp_path, sample_data):
    groups = [
        generate_instances(
            sample_data / TEMPLATE,
            tmp_path / f"group{n}",
            PER_ASSOCIATION,
            series=2,
            tag=f"LOAD{n}",
        )
        for n in range(ASSOCIATIONS)
    ]
    running = start_node(tmp_path / "node")
    try:
        binary = require_tool("storescu")
        env = {**os.environ, "TCP_NODELAY": "1"}
        processes = []
        for n, files in enumerate(groups):
            # Each association also re-sends ten instances of its neighbour: duplicates racing
            # each other must end up stored once.
            overlap = groups[(n + 1) % ASSOCIATIONS][:10]
            args = [
                binary,
                "-aec",
                NODE_AET,
                "127.0.0.1",
                str(running.port),
                *[str(path) for path in files + overlap],
            ]
            processes.append(
                subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env)
            )
        for process in processes:
            output, _ = process.communicate(timeout=240)
            assert process.returncode == 0, output.decode(errors="replace")[-2000:]
        index = running.index
        expected = {sop_uid(path) for files in groups for path in files}
        instances = index.find("Instance", {"PatientID": "LOAD*"})
        stored = [index.main_dicom_tags("Instance", i)["SOPInstanceUID"] for i in instances]
        assert len(stored) == len(set(stored)) == ASSOCIATIONS * PER_ASSOCIATION
        assert set(stored) == expected
        for instance in instances[:: len(instances) // 20]:
            pydicom.dcmread(index.instance_path(instance)).pixel_array  # noqa: B018
    finally:
        running.node.stop()


def _serve(storage: Path, dicom_port: int, log: Path) -> tuple[subprocess.Popen, str]:
    return serve_process(
        log,
        "--storage",
        str(storage),
        "--http-port",
        "0",
        "--dicom-port",
        str(dicom_port),
        "--aet",
        NODE_AET,
    )


def test_sigkill_mid_ingest_keeps_every_acknowledged_instance(tmp_path, sample_data):
    files = generate_instances(sample_data / TEMPLATE, tmp_path / "files", 600, tag="KILL")
    storage, log = tmp_path / "storage", tmp_path / "serve.log"
    dicom_port = free_port()
    server, _ = _serve(storage, dicom_port, log)
    env = {**os.environ, "TCP_NODELAY": "1"}
    sender = subprocess.Popen(
        [
            require_tool("storescu"),
            "-v",
            "-aec",
            NODE_AET,
            "127.0.0.1",
            str(dicom_port),
            *[str(path) for path in files],
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=env,
    )
    acknowledged = 0
    assert sender.stdout is not None
    for line in sender.stdout:
        if "Received Store Response (Success)" in line:
            acknowledged += 1
            if acknowledged == 150:
                os.kill(server.pid, signal.SIGKILL)  # in the middle of the stream
    sender.wait(timeout=60)
    server.wait(timeout=10)
    assert 150 <= acknowledged < len(files), "the node was not killed mid-ingest"

    restarted, url = _serve(storage, dicom_port, log)
    try:
        for path in files[:acknowledged]:
            uid = sop_uid(path)
            found = requests.post(f"{url}/tools/lookup", data=uid, timeout=30).json()
            assert len(found) == 1 and found[0]["Type"] == "Instance", uid
            content = requests.get(f"{url}/instances/{found[0]['ID']}/file", timeout=30).content
            stored = pydicom.dcmread(io.BytesIO(content))
            assert stored.SOPInstanceUID == uid
            assert stored.PixelData == pydicom.dcmread(path).PixelData
        # And it still accepts new data after the crash.
        dcmtk("storescu", "-aec", NODE_AET, "127.0.0.1", str(dicom_port), str(files[-1]))
    finally:
        restarted.send_signal(signal.SIGTERM)
        restarted.wait(timeout=30)
