"""Datasets as Orthanc's JSON: ``/tags`` (full), ``?simplify`` and ``?short`` forms.

Orthanc shows every attribute except the file meta group: text values decoded to UTF-8 with
padding removed, numbers as text, multiple values joined by backslashes, sequences as lists,
binary values and pixel data as ``null``, values longer than 256 characters as ``null``
("TooLong").
"""

from __future__ import annotations

from typing import Any

from pydicom.datadict import (
    dictionary_is_retired,
    dictionary_keyword,
    dictionary_VR,
    tag_for_keyword,
)
from pydicom.dataelem import DataElement
from pydicom.dataset import Dataset
from pydicom.multival import MultiValue

from .tags import MAXIMUM_TAG_LENGTH, keyword_of, value_text

UNKNOWN_NAME = "Unknown Tag & Data"

#: VRs Orthanc shows as ``null`` (binary content).
FLOAT_VRS = frozenset({"FL", "FD"})
NUMERIC_BINARY_VRS = frozenset({"FL", "FD", "SL", "SS", "UL", "US", "AT", "SV", "UV"})
BINARY_VRS = frozenset({"OB", "OD", "OF", "OL", "OV", "OW", "UN", "OB or OW", "US or OW"})


def tag_key(elem: DataElement) -> str:
    """The tag as Orthanc writes it in JSON keys: ``"0010,0010"`` in lowercase hex."""
    return f"{elem.tag.group:04x},{elem.tag.element:04x}"


def element_name(elem: DataElement) -> str:
    """Orthanc's name of an attribute: its keyword, ``RETIRED_`` + keyword for retired ones,
    ``GenericGroupLength``, ``PrivateCreator``, or ``Unknown Tag & Data``."""
    tag = elem.tag
    if tag.element == 0:
        return "GenericGroupLength"
    if tag.is_private:
        return "PrivateCreator" if 0x0010 <= tag.element <= 0x00FF else UNKNOWN_NAME
    try:
        keyword = dictionary_keyword(tag)
    except KeyError:
        return UNKNOWN_NAME
    if not keyword:
        return UNKNOWN_NAME
    return f"RETIRED_{keyword}" if dictionary_is_retired(tag) else keyword


def _leaf(elem: DataElement) -> tuple[str, str | None]:
    """``(Type, Value)`` of a non-sequence attribute."""
    if elem.VR in BINARY_VRS or elem.tag == 0x7FE00010:
        return "Null", None
    try:
        value = elem.value
    except Exception:  # undecodable bytes in a hostile file should not break the listing
        return "Null", None
    if value is None or (elem.VR in NUMERIC_BINARY_VRS and value == []):
        # Orthanc shows empty text as "" but an empty binary number as null.
        return ("Null", None) if elem.VR in NUMERIC_BINARY_VRS else ("String", "")
    if elem.VR == "AT":
        values = list(value) if isinstance(value, (list, MultiValue)) else [value]
        text = "\\".join(f"{int(tag) >> 16:04x},{int(tag) & 0xFFFF:04x}" for tag in values)
    elif elem.VR in FLOAT_VRS:
        # Orthanc prints binary floats with 17 significant digits ("%.17g").
        values = list(value) if isinstance(value, (list, MultiValue)) else [value]
        text = "\\".join(format(float(v), ".17g") for v in values)
    else:
        text = value_text(value, elem.VR)
    if len(text) > MAXIMUM_TAG_LENGTH:
        return "TooLong", None
    return "String", text


def dataset_to_json(ds: Dataset, *, form: str = "full", meta: bool = False) -> dict[str, Any]:
    """Convert a dataset to Orthanc's JSON.

    Parameters
    ----------
    ds : Dataset
        The dataset (file meta is not shown, as in Orthanc's ``/tags``).
    meta : bool
        Show only the file meta group (Orthanc's ``/header``) instead.
    form : {"full", "simplify", "short"}
        ``full``: ``{"0010,0010": {"Name", "Type", "Value"}}``; ``simplify``:
        ``{"PatientName": value}``; ``short``: ``{"0010,0010": value}``.
    """
    result: dict[str, Any] = {}
    for elem in ds:
        # File meta is shown by Orthanc's /header, trailing padding nowhere.
        if (elem.tag.group == 0x0002) != meta or elem.tag == 0xFFFCFFFC:
            continue
        key = tag_key(elem)
        name = element_name(elem)
        if elem.VR == "SQ":
            items = [dataset_to_json(item, form=form) for item in elem.value]
            kind, value = "Sequence", items
        else:
            kind, value = _leaf(elem)
        if form == "full":
            result[key] = {"Name": name, "Type": kind, "Value": value}
        elif form == "short":
            result[key] = value
        else:
            result[key if name == UNKNOWN_NAME else name] = value
    return result


def dataset_from_json(tags: dict[str, Any], *, where: str = "") -> Dataset:
    """A dataset from Orthanc's simplified JSON (what ``?simplify`` shows, and what request
    bodies such as ``find-worklist`` queries give): keywords or ``"gggg,eeee"`` tags to text
    values (``\\`` between multiple values, ``""`` or ``null`` for empty), sequences as
    lists of such objects.

    Raises
    ------
    ValueError
        An unknown tag, or a value of the wrong kind; the message names the attribute.
    """
    if not isinstance(tags, dict):
        raise ValueError(f"expected an object of DICOM tags{where}, got {type(tags).__name__}")
    ds = Dataset()
    for name, value in tags.items():
        keyword = keyword_of(name)
        tag = tag_for_keyword(keyword)
        vr = dictionary_VR(tag)
        path = f"{where} > {keyword}" if where else keyword
        if vr == "SQ":
            if value in (None, ""):
                value = []
            if not isinstance(value, list):
                raise ValueError(f"{path} is a sequence: give a list of objects")
            items = [dataset_from_json(item, where=path) for item in value]
            ds.add_new(tag, vr, items)
        elif value is None or isinstance(value, str):
            ds.add_new(tag, vr.split(" or ")[0], value or None)
        else:
            raise ValueError(f"{path} must be given as text, not {type(value).__name__}")
    return ds


def reform(full: dict[str, Any], form: str) -> dict[str, Any]:
    """Orthanc's full JSON (``{"gggg,eeee": {"Name", "Type", "Value"}}``) in another form
    (``"full"``, ``"simplify"`` or ``"short"``), sequences included."""
    if form == "full":
        return full
    result: dict[str, Any] = {}
    for key, entry in full.items():
        value = entry["Value"]
        if entry["Type"] == "Sequence":
            value = [reform(item, form) for item in value]
        name = entry["Name"]
        result[key if form == "short" or name == UNKNOWN_NAME else name] = value
    return result
