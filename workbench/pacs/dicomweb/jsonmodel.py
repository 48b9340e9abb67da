"""Stored instances in the DICOM JSON model (PS3.18 F), large binary values as ``BulkDataURI``.

pydicom writes the model (:meth:`pydicom.dataset.Dataset.to_json_dict`); what is ours is
where bulk data is found. Large binary values at the top level (pixel data above all) are
never read: the file is parsed with those values deferred and they are listed with the
URI that serves them. Binary values inside sequences longer than :data:`BULK_THRESHOLD`
go through pydicom's bulk data handler, which is given each element's path
(``00540016/0/00181072``), since the URI must name the element inside its item.
"""

from __future__ import annotations

import json
import logging
from functools import lru_cache
from pathlib import Path
from typing import Any

import pydicom
from pydicom.datadict import dictionary_VR
from pydicom.dataelem import DataElement, RawDataElement
from pydicom.dataset import Dataset
from pydicom.uid import DeflatedExplicitVRLittleEndian

log = logging.getLogger(__name__)

#: Binary values longer than this (in bytes) are given as ``BulkDataURI``, shorter ones
#: inline (base64), as pydicom does by default.
BULK_THRESHOLD = 1024
#: Pixel Data, Float Pixel Data, Double Float Pixel Data.
PIXEL_TAGS = frozenset({0x7FE00010, 0x7FE00008, 0x7FE00009})
BINARY_VRS = frozenset({"OB", "OD", "OF", "OL", "OV", "OW", "UN", "OB or OW", "US or OW"})


def read_deferred(path: Path) -> Dataset:
    """The stored file with values above :data:`BULK_THRESHOLD` left on disk until used."""
    ds = pydicom.dcmread(path, defer_size=BULK_THRESHOLD)
    if ds.file_meta.get("TransferSyntaxUID") == DeflatedExplicitVRLittleEndian:
        # Deferred values are read again by file offset, which a deflated stream has not.
        ds = pydicom.dcmread(path)
    return ds


def _resolved_vr(ds: Dataset, tag: int, raw: RawDataElement) -> str:
    vr = raw.VR or dictionary_VR(tag)
    if vr in ("OB or OW", "US or OW"):
        # PS3.5 A.1/8.2: OW for words; encapsulated or 8-bit pixel data is OB.
        syntax = ds.file_meta.get("TransferSyntaxUID")
        words = int(ds.get("BitsAllocated") or 16) > 8 or vr == "US or OW"
        compressed = bool(syntax and pydicom.uid.UID(syntax).is_compressed)
        vr = "OW" if words and not compressed else "OB"
    return str(vr)


def _take_deferred_binaries(ds: Dataset) -> dict[int, str]:
    """Remove the top-level binary values still on disk, and pixel data of any size (viewers
    fetch pixels by URI); return their tags and VRs."""
    taken = {}
    for tag in list(ds.keys()):
        raw = ds.get_item(tag)
        if not isinstance(raw, RawDataElement):
            continue
        if (raw.value is None or tag in PIXEL_TAGS) and raw.length:
            vr = _resolved_vr(ds, tag, raw)
            if vr in BINARY_VRS:
                taken[int(tag)] = vr
                del ds[tag]
    return taken


def _element_paths(ds: Dataset, prefix: str = "") -> dict[int, str]:
    """``id(element) → path`` of every element (iterating converts raw elements, once)."""
    paths: dict[int, str] = {}
    for elem in ds:
        path = f"{prefix}{int(elem.tag):08X}"
        paths[id(elem)] = path
        if elem.VR == "SQ":
            for position, item in enumerate(elem.value):
                paths.update(_element_paths(item, f"{path}/{position}/"))
    return paths


def dataset_json(ds: Dataset, bulk_base: str) -> dict[str, Any]:
    """The DICOM JSON model of ``ds`` (file meta left out), bulk data under ``bulk_base``.

    Parameters
    ----------
    ds : Dataset
        Best read with :func:`read_deferred`, so that pixel data stays on disk.
    bulk_base : str
        The instance's bulk data URL (``.../instances/{uid}/bulk``); each value's URI is
        this plus ``/`` and the element's path.
    """
    deferred = _take_deferred_binaries(ds)
    paths = _element_paths(ds)

    def bulk_uri(elem: DataElement) -> str:
        return f"{bulk_base}/{paths.get(id(elem), f'{int(elem.tag):08X}')}"

    model = ds.to_json_dict(
        bulk_data_threshold=BULK_THRESHOLD,
        bulk_data_element_handler=bulk_uri,
        suppress_invalid_tags=True,
    )
    _empty_values_as_ps3_18(model)
    for tag, vr in deferred.items():
        model[f"{tag:08X}"] = {"vr": vr, "BulkDataURI": f"{bulk_base}/{tag:08X}"}
    return dict(sorted(model.items()))


def _empty_values_as_ps3_18(model: dict[str, Any]) -> None:
    """PS3.18 F.2.5 in place: an element without values has no ``Value`` (pydicom gives an
    empty sequence ``[]``), and an empty value among several is ``null`` (pydicom: ``""``).
    Orthanc's plugin and other clients' parsers expect exactly this."""
    for element in model.values():
        values = element.get("Value")
        if values is None:
            continue
        if not values:
            del element["Value"]
        elif element.get("vr") == "SQ":
            for item in values:
                _empty_values_as_ps3_18(item)
        elif len(values) > 1:
            element["Value"] = [None if value == "" else value for value in values]


def instance_base(root: str, ds: Dataset) -> str:
    """``{root}/studies/{study}/series/{series}/instances/{sop}`` of a stored instance."""
    return (
        f"{root}/studies/{ds.get('StudyInstanceUID', '')}/series/"
        f"{ds.get('SeriesInstanceUID', '')}/instances/{ds.get('SOPInstanceUID', '')}"
    )


@lru_cache(maxsize=1024)
def instance_json_bytes(path: Path, root: str) -> bytes:
    """The UTF-8 JSON of one stored file's metadata, kept: stored files never change (a new
    version gets a new name), and viewers ask for the same series' metadata again and again.

    ``root`` is the server's ``/dicom-web`` URL, the start of every ``BulkDataURI``.
    """
    ds = read_deferred(path)
    model = dataset_json(ds, instance_base(root, ds) + "/bulk")
    return json.dumps(model, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
