"""Helper processes reading STOW-RS headers: the same headers and errors as the server's own
reading, an upload shared with them stored as sent, a helper that dies replaced."""

from __future__ import annotations

import time
import uuid

import pytest
import requests

from tests.data import dicom_files
from workbench.pacs.dicomweb import stow
from workbench.pacs.errors import InvalidInstanceError
from workbench.pacs.header_helpers import GROUP_SIZE, HeaderHelpers, HelperGoneError, parse_group
from workbench.pacs.server import serve

FAILED = "00081198"
REFERENCED = "00081199"


def _wait_until_ready(helpers: HeaderHelpers, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not helpers.ready:
        assert time.monotonic() < deadline, "no header helper got ready"
        time.sleep(0.05)


@pytest.fixture
def helpers():
    helpers = HeaderHelpers(1)
    helpers.start()
    _wait_until_ready(helpers)
    yield helpers
    helpers.close()


def _small_files(sample_data, count: int):
    return [p for p in dicom_files(sample_data) if p.stat().st_size <= 256 * 1024][:count]


def test_a_helper_reads_headers_and_refusals_as_this_process_does(helpers, sample_data):
    files = _small_files(sample_data, 12)
    cut = files[0].read_bytes()
    items = [(path.read_bytes(), f"part {n}") for n, path in enumerate(files, 1)]
    items += [(b"not DICOM at all", "part 13"), (cut[: len(cut) - 100], "part 14")]
    theirs = helpers.submit(items).result(timeout=60)
    ours = parse_group(items)
    assert len(theirs) == len(items)
    for their, our in zip(theirs[:12], ours[:12], strict=True):
        assert their == our  # every ID, tag text and the transfer syntax
    for their, our in zip(theirs[12:], ours[12:], strict=True):
        assert isinstance(their, InvalidInstanceError)
        assert type(their) is type(our) and str(their) == str(our)
    assert "part 13" in str(theirs[12]) and "part 14" in str(theirs[13])
    assert helpers.parts_read == len(items)


def test_a_helper_that_dies_fails_its_groups_and_is_replaced(helpers, sample_data, caplog):
    items = [(path.read_bytes(), "part 1") for path in _small_files(sample_data, 1)]
    (helper,) = helpers._helpers
    helper.process.kill()
    helper.process.wait()
    future = helpers.submit(items)  # None once its end was seen, else a group that fails
    if future is not None:
        with pytest.raises(HelperGoneError):
            future.result(timeout=60)
    deadline = time.monotonic() + 60
    while helpers.ready:  # the reader thread sees the end of its output
        assert time.monotonic() < deadline
        time.sleep(0.05)
    assert "header helper process exited" in caplog.text  # said in the server's log
    helpers.start()
    _wait_until_ready(helpers)
    assert helpers.submit(items).result(timeout=60) == parse_group(items)


@pytest.mark.parametrize("processes", [-1, 1.5, True, "2"])
def test_a_bad_number_of_processes_is_refused(processes):
    with pytest.raises(ValueError, match="StowHeaderProcesses"):
        HeaderHelpers(processes)


def test_no_processes_start_none():
    helpers = HeaderHelpers(0)
    helpers.start()
    assert not helpers.ready and helpers.submit([]) is None


@pytest.mark.parametrize(
    "limits",
    [
        {},
        {"MAX_QUEUED_BYTES": 30_000},  # this process helps
        {"MAX_PART_BYTES": 4_000},  # most parts "large": read by the helper from their files
    ],
)
def test_an_upload_shared_with_a_helper_is_stored_as_sent(
    tmp_path, sample_data, monkeypatch, limits
):
    for name, limit in limits.items():
        monkeypatch.setattr(stow, name, limit)
    files = _small_files(sample_data, 40)
    assert len(files) > 3 * GROUP_SIZE
    parts = [("application/dicom", path.read_bytes()) for path in files]
    # Part numbers (1-based) of a non-DICOM part, a cut DICOM part, a larger non-DICOM part.
    bad_at = (5, 23, 31)
    parts.insert(bad_at[0] - 1, ("application/dicom", b"not DICOM " * 50))
    parts.insert(bad_at[1] - 1, ("application/dicom", parts[0][1][:200]))
    parts.insert(bad_at[2] - 1, ("application/dicom", b"not DICOM " * 1_000))
    boundary = uuid.uuid4().hex
    body = (
        b"".join(
            f"--{boundary}\r\nContent-Type: {kind}\r\n\r\n".encode() + data + b"\r\n"
            for kind, data in parts
        )
        + f"--{boundary}--\r\n".encode()
    )
    with serve(StorageDirectory=str(tmp_path / "store"), HttpPort=0, dicom=False) as server:
        server.header_helpers.start()
        _wait_until_ready(server.header_helpers)
        response = requests.post(
            f"{server.url}/dicom-web/studies", data=body, timeout=120,
            headers={"Content-Type": f'multipart/related; type="application/dicom"; '
                                    f"boundary={boundary}"},
        )  # fmt: skip
        assert response.status_code == 202, response.text
        if "MAX_QUEUED_BYTES" not in limits:
            assert server.header_helpers.parts_read > 0  # the helper took part of the upload
        if "MAX_PART_BYTES" in limits:  # it read a share of the large ones from their files
            large = sum(len(data) > limits["MAX_PART_BYTES"] for _, data in parts)
            assert server.header_helpers.parts_read >= large // 3
        answer = response.json()
        assert len(answer[FAILED]["Value"]) == len(bad_at)
        warning = response.headers["warning"]
        assert all(f"part {number}" in warning for number in bad_at)
        stored = {
            server.index.instance_path(instance_id).read_bytes()
            for instance_id in server.index.list_ids("Instance")
        }
        # Every good part is stored byte for byte (two samples may share a SOP Instance UID).
        assert stored <= {path.read_bytes() for path in files}
        assert len(answer[REFERENCED]["Value"]) == len(files)
        assert not any(server.index.incoming_dir.iterdir())
        # Parts refused after their file was written leave none behind in the store.
        assert len(list(server.index.store.iter_uuids())) == len(server.index.list_ids("Instance"))
