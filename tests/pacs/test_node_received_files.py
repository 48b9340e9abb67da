"""What the node writes for a C-STORE: the data set exactly as sent, behind the file meta that
pydicom itself would write for it."""

from __future__ import annotations

import tempfile

import pydicom
from pydicom.filebase import DicomBytesIO
from pydicom.filewriter import write_file_meta_info
from pynetdicom.dsutils import create_file_meta

from tests.pacs.node_support import (
    NODE_AET,
    TEMPLATE,
    dcmtk,
    generate_instances,
    note_where_received,
    start_node,
)


def _data_set_offset(data: bytes) -> int:
    """Where the data set starts: after the preamble, DICM and the group 2 elements."""
    group_length = int.from_bytes(data[140:144], "little")
    return 144 + group_length


def test_stored_file_is_the_sent_data_set_behind_standard_file_meta(
    tmp_path, sample_data, database
):
    source = generate_instances(sample_data / TEMPLATE, tmp_path / "sent", 1, tag="META")[0]
    ds = pydicom.dcmread(source)
    del ds.DataSetTrailingPadding  # storescu leaves it out of what it sends
    ds.save_as(source, enforce_file_format=True)
    running = start_node(tmp_path / "node", DatabaseUrl=database.new_url())
    try:
        dcmtk("storescu", "-aec", NODE_AET, "127.0.0.1", str(running.port), str(source))
        (instance,) = running.index.find("Instance", {})
        stored = running.index.instance_path(instance).read_bytes()
    finally:
        running.node.stop()
        running.index.close()

    sent = source.read_bytes()
    assert stored[_data_set_offset(stored) :] == sent[_data_set_offset(sent) :]

    sent_meta = pydicom.dcmread(source, stop_before_pixels=True).file_meta
    expected = DicomBytesIO()
    expected.write(b"\x00" * 128 + b"DICM")
    write_file_meta_info(
        expected,
        create_file_meta(
            sop_class_uid=sent_meta.MediaStorageSOPClassUID,
            sop_instance_uid=sent_meta.MediaStorageSOPInstanceUID,
            transfer_syntax=sent_meta.TransferSyntaxUID,
            implementation_uid=running.node.ae.implementation_class_uid,
            implementation_version=running.node.ae.implementation_version_name,
        ),
        enforce_standard=False,
    )
    assert stored[: _data_set_offset(stored)] == expected.getvalue()


def test_data_sets_are_received_into_the_store_and_the_temporary_directory_is_left_alone(
    tmp_path, sample_data, monkeypatch
):
    """A node started in a notebook (no process-wide temporary directory of its own)
    receives each data set into its store's ``incoming/``, from where it is linked into the
    store; the user's temporary directory sees nothing."""
    sources = generate_instances(sample_data / TEMPLATE, tmp_path / "sent", 3, tag="INTO")
    temporary = tmp_path / "temporary"
    temporary.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(temporary))
    running = start_node(tmp_path / "node")
    received_in = note_where_received(monkeypatch, running.index)
    try:
        dcmtk("storescu", "-aec", NODE_AET, "127.0.0.1", str(running.port), *map(str, sources))
        assert len(running.index.find("Instance", {})) == len(sources)
        incoming = running.index.incoming_dir
    finally:
        running.node.stop()
        running.index.close()
    assert received_in == [incoming] * len(sources)
    assert list(incoming.iterdir()) == []
    assert list(temporary.iterdir()) == []
    assert tempfile.gettempdir() == str(temporary)
