"""A probe dataset holding every attribute of the DICOM dictionary, and what a real Orthanc's
anonymization does to each: how ``workbench/pacs/deidentification.tsv`` is made and checked.

``python -m tests.pacs.modification_support`` starts a throwaway Orthanc, anonymizes the probe
with each ``DicomVersion`` it offers, and writes the table: one row per attribute the profile
touches, its action per edition (``X`` removed, ``Z`` emptied, ``U`` a new identifier,
``-`` left alone).
"""

from __future__ import annotations

import io
import sys
import tempfile
from pathlib import Path

import pydicom
import requests
from pydicom.datadict import DicomDictionary, keyword_for_tag
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.sequence import Sequence
from pydicom.uid import ExplicitVRLittleEndian, SecondaryCaptureImageStorage, generate_uid

from workbench.pacs.anonymize import PROFILE_TABLE, VERSIONS, profiles, required_attributes

#: Attributes the probe leaves out: file meta, commands, directories, items, pixels,
#: the character set, and what the anonymization sets itself.
_LEFT_OUT_GROUPS = (0x0000, 0x0002, 0x0004, 0xFFFE)
_LEFT_OUT = {0x7FE00010, 0x7FE00008, 0x7FE00009, 0x00080005}
#: Set by the anonymization whatever the edition (the patient, the three levels' UIDs, the
#: de-identification marks): not rows of the table.
SET_BY_ANONYMIZATION = {0x00100010, 0x00100020, 0x0020000D, 0x0020000E, 0x00080018,
                        0x00120062, 0x00120063}  # fmt: skip
#: Repeating groups (curves, overlays) the dictionary lists by mask.
_REPEATING = ((0x50003000, "OW"), (0x60003000, "OW"), (0x60004000, "LT"), (0x50000005, "US"))


def _dummy(tag: int, vr: str):
    text = f"{tag:08X}"
    return {
        "AE": "AE" + text, "AS": "001Y", "AT": 0x00100010, "CS": "CS" + text,
        "DA": "20000101", "DS": "1", "DT": "20000101", "FL": 1.0, "FD": 1.0, "IS": "1",
        "LO": "LO" + text, "LT": "LT" + text, "PN": "PN" + text, "SH": "SH" + text, "SL": 1,
        "SS": 1, "ST": "ST" + text, "SV": 1, "TM": "000000", "UC": "UC" + text,
        "UI": f"1.2.3.{tag >> 16}.{tag & 0xFFFF}", "UL": 1, "UR": "http://x/" + text,
        "US": 1, "UT": "UT" + text, "UV": 1,
    }.get(vr, b"\x01\x02")  # fmt: skip


def probe_dataset() -> Dataset:
    """Every attribute of the DICOM dictionary with a distinct value (each sequence with one
    item), as a Secondary Capture without pixels."""
    ds = Dataset()
    for tag, (vr, *_rest) in DicomDictionary.items():
        if tag >> 16 in _LEFT_OUT_GROUPS or tag in _LEFT_OUT:
            continue
        vr = vr.split(" or ")[0]
        if vr == "SQ":
            item = Dataset()
            item.CodeMeaning = "kept"
            ds.add_new(tag, "SQ", Sequence([item]))
        else:
            ds.add_new(tag, vr, _dummy(tag, vr))
    for tag, vr in _REPEATING:
        ds.add_new(tag, vr, _dummy(tag, vr))
    ds.SOPClassUID = SecondaryCaptureImageStorage
    ds.SOPInstanceUID, ds.StudyInstanceUID = generate_uid(), generate_uid()
    ds.SeriesInstanceUID = generate_uid()
    ds.PatientID = "PROBE"
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.file_meta.MediaStorageSOPClassUID = ds.SOPClassUID
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    return ds


def to_bytes(ds: Dataset) -> bytes:
    buffer = io.BytesIO()
    ds.save_as(buffer, enforce_file_format=True)
    return buffer.getvalue()


def actions(before: Dataset, after: Dataset) -> dict[int, str]:
    """What happened to each top-level attribute of ``before``: X, Z, U or - (kept)."""
    found = {}
    for elem in before:
        tag = int(elem.tag)
        if tag in SET_BY_ANONYMIZATION:
            continue
        if tag not in after:
            found[tag] = "X"
            continue
        value = after[tag].value
        if value == elem.value:
            found[tag] = "-"
        elif value in (None, "", b"") or (after[tag].VR == "SQ" and not value):
            found[tag] = "Z"
        elif after[tag].VR == "UI":
            found[tag] = "U"
        else:
            found[tag] = f"?{value!r}"
    return found


def where_we_part(path: tuple, source: Dataset, version: str | None) -> bool:
    """Where we part from Orthanc on purpose, since it leaves objects the standard does not
    allow: text that needs UTF-8 is declared as such (SpecificCharacterSet); odd-length
    private creators are padded with a space (LO), not a NUL; attributes the
    IOD requires that an edition's profile (``version``; ``None``: not anonymizing) would
    erase keep a dummy value (type 1) or stay, empty (type 2)."""
    if path[0] == 0x00080005:
        return True
    if (path[-1] >> 16) & 1 and 0x10 <= path[-1] & 0xFFFF <= 0xFF:
        return True  # a private creator of odd length padded as LO (space), not with NUL
    if version is None or path[0] not in required_attributes(source):
        return False
    return profiles()[version].get(path[0]) in ("X", "Z")


def orthanc_actions(url: str, version: str, data: bytes) -> dict[int, str]:
    """Anonymize ``data`` (the probe) on the Orthanc at ``url`` with ``DicomVersion``."""
    instance = requests.post(f"{url}/instances", data=data, timeout=60).json()["ID"]
    answer = requests.post(f"{url}/instances/{instance}/anonymize",
                           json={"DicomVersion": version}, timeout=60)  # fmt: skip
    answer.raise_for_status()
    return actions(pydicom.dcmread(io.BytesIO(data)), pydicom.dcmread(io.BytesIO(answer.content)))


def write_table(url: str, path: Path = PROFILE_TABLE) -> None:
    """Write the table of the editions Orthanc at ``url`` offers (see the module docstring)."""
    data = to_bytes(probe_dataset())
    per_version = {version: orthanc_actions(url, version, data) for version in VERSIONS}
    tags = sorted({tag for found in per_version.values() for tag, act in found.items()
                   if act != "-"})  # fmt: skip
    lines = ["# PS3.15 Table E.1-1 (Basic Profile) as Orthanc 1.10 applies each edition: X "
             "removed, Z emptied, U new identifier, - left alone.",
             "# Made by `python -m tests.pacs.modification_support` from a real Orthanc.",
             "\t".join(["tag", "keyword", *VERSIONS])]  # fmt: skip
    for tag in tags:
        row = [per_version[version][tag] for version in VERSIONS]
        if any(act.startswith("?") for act in row):
            raise RuntimeError(f"{tag:08X}: an action this table cannot say: {row}")
        lines.append("\t".join([f"{tag:08X}", keyword_for_tag(tag) or "", *row]))
    path.write_text("\n".join(lines) + "\n")


def main() -> None:
    from tests.peers import start_orthanc

    with tempfile.TemporaryDirectory() as folder:
        orthanc = start_orthanc(Path(folder) / "orthanc")
        try:
            write_table(orthanc.url)
        finally:
            orthanc.stop()
    print(f"wrote {PROFILE_TABLE}", file=sys.stderr)


if __name__ == "__main__":
    main()
