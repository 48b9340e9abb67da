"""C-GET between two workbench nodes: every series of the corpus arrives whole, pixels intact.

The requesting node proposes storage contexts for what it asks for (the SOP classes and
stored transfer syntaxes an instance-level C-FIND told it), so the serving node sends each
file as stored, whatever its codec, and nothing fails for want of a context.
"""

from __future__ import annotations

import tempfile
import warnings
from collections import defaultdict
from pathlib import Path

import pydicom
import pytest

from tests.data import dicom_files
from tests.pacs.node_support import note_where_received
from tests.peers import free_port
from workbench.pacs import serve

SERVING_AET, REQUESTING_AET = "SERVING", "REQUESTING"


def _read(path: Path, **kwargs) -> pydicom.Dataset:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return pydicom.dcmread(path, **kwargs)


@pytest.fixture(scope="module")
def two_nodes(tmp_path_factory, data_root, database):
    """A serving node holding the corpus (its index on each kind of database), and an empty
    requesting node that may C-GET it."""
    serving_port, requesting_port = free_port(), free_port()
    serving = serve(
        StorageDirectory=str(tmp_path_factory.mktemp("serving")),
        DatabaseUrl=database.new_url(),
        HttpPort=0,
        DicomPort=serving_port,
        DicomAet=SERVING_AET,
        DicomModalities={"requesting": [REQUESTING_AET, "127.0.0.1", requesting_port]},
    )
    requesting = serve(
        StorageDirectory=str(tmp_path_factory.mktemp("requesting")),
        HttpPort=0,
        DicomPort=requesting_port,
        DicomAet=REQUESTING_AET,
        DicomModalities={"serving": [SERVING_AET, "127.0.0.1", serving_port]},
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        summary = serving.index.import_path(*dicom_files(data_root), progress=False)
    assert not summary.errors
    yield serving, requesting
    requesting.stop()
    serving.stop()


def _series_files(index) -> dict[str, list[Path]]:
    files = defaultdict(list)
    for series in index.find("Series", {}):
        uid = index.main_dicom_tags("Series", series)["SeriesInstanceUID"]
        files[uid] = [path for _, path in index.instance_files("Series", series)]
    return files


def test_every_series_arrives_whole_with_its_pixels(two_nodes):
    serving, requesting = two_nodes
    served = _series_files(serving.index)
    assert len(served) > 5
    for series_uid, paths in served.items():
        result = requesting.node.get("serving", {"SeriesInstanceUID": series_uid})
        assert result.ok and result.failed == 0, (series_uid, result)
        assert result.completed == len(paths), (series_uid, result)
        for path in paths:
            original = _read(path)
            (instance,) = requesting.index.find(
                "Instance", {"SOPInstanceUID": str(original.SOPInstanceUID)}
            )
            received = requesting.index.instance_path(instance)
            if received.read_bytes() == path.read_bytes():
                continue
            copy = _read(received)
            assert copy.file_meta.TransferSyntaxUID == original.file_meta.TransferSyntaxUID
            if "PixelData" in original:
                assert copy.PixelData == original.PixelData, path


def test_a_c_get_leaves_nothing_in_the_temporary_directory(two_nodes, tmp_path, monkeypatch):
    """pynetdicom receives each data set into a temporary file (in the store's incoming/);
    on the association of a C-GET we requested, it is ours to remove once stored."""
    serving, requesting = two_nodes
    temporary = tmp_path / "temporary"
    temporary.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(temporary))
    received_in = note_where_received(monkeypatch, requesting.index)
    series_uid, paths = next(iter(_series_files(serving.index).items()))
    result = requesting.node.get("serving", {"SeriesInstanceUID": series_uid})
    assert result.ok and result.completed == len(paths) > 0, result
    # Received into the store's incoming/, on its filesystem, and removed from there.
    assert received_in == [requesting.index.incoming_dir] * len(paths)
    assert list(requesting.index.incoming_dir.iterdir()) == []
    for path in paths:
        uid = str(_read(path, stop_before_pixels=True).SOPInstanceUID)
        (instance,) = requesting.index.find("Instance", {"SOPInstanceUID": uid})
        assert _read(requesting.index.instance_path(instance)).SOPInstanceUID == uid
    assert list(temporary.iterdir()) == []
