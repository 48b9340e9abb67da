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
from pydicom.dataelem import DataElement, RawDataElement
from pydicom.dataset import Dataset
from pydicom.multival import MultiValue

from .privatedict import private_name
from .tags import MAIN_TAGS, MAXIMUM_TAG_LENGTH, keyword_of, value_text

UNKNOWN_NAME = "Unknown Tag & Data"

#: VRs Orthanc shows as ``null`` (binary content).
FLOAT_VRS = frozenset({"FL", "FD"})
NUMERIC_BINARY_VRS = frozenset({"FL", "FD", "SL", "SS", "UL", "US", "AT", "SV", "UV"})
#: SV and UV (64-bit integers) among them: Orthanc 1.10 shows their values as ``null`` too.
BINARY_VRS = frozenset({"OB", "OD", "OF", "OL", "OV", "OW", "UN", "OB or OW", "US or OW",
                        "SV", "UV"})  # fmt: skip


def tag_key(elem: DataElement) -> str:
    """The tag as Orthanc writes it in JSON keys: ``"0010,0010"`` in lowercase hex."""
    return f"{elem.tag.group:04x},{elem.tag.element:04x}"


def element_name(elem: DataElement, ds: Dataset | None = None) -> str:
    """Orthanc's name of an attribute: its keyword, ``RETIRED_`` + keyword for retired ones
    (not for the main tags, which Orthanc names itself), ``GenericGroupLength`` (or
    ``PrivateGroupLength``), ``PrivateCreator``, a private attribute's name in its creator's
    dictionary (``ds``: the data set holding it, where its creator is), or ``Unknown Tag &
    Data``."""
    tag = elem.tag
    if tag.element == 0:
        return "PrivateGroupLength" if tag.is_private else "GenericGroupLength"
    if tag.is_private:
        if 0x0010 <= tag.element <= 0x00FF:
            return "PrivateCreator"
        creator = private_creator(elem, ds) if ds is not None else None
        name = private_name(tag, creator) if creator is not None else None
        return name or UNKNOWN_NAME
    try:
        keyword = dictionary_keyword(tag)
    except KeyError:
        return UNKNOWN_NAME
    if not keyword:
        return UNKNOWN_NAME
    retired = dictionary_is_retired(tag) and keyword not in MAIN_KEYWORDS
    return f"RETIRED_{keyword}" if retired else keyword


#: Orthanc's main tags keep the names Orthanc gives them, retired or not (OtherPatientIDs).
MAIN_KEYWORDS = frozenset(keyword for level in MAIN_TAGS.values() for keyword in level)


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
    unknown_vr = _private_without_vr(ds)
    for elem in ds:
        # File meta is shown by Orthanc's /header, trailing padding nowhere.
        if (elem.tag.group == 0x0002) != meta or elem.tag == 0xFFFCFFFC:
            continue
        key = tag_key(elem)
        name = element_name(elem, ds)
        if elem.VR == "SQ":
            items = [dataset_to_json(item, form=form) for item in elem.value]
            kind, value = "Sequence", items
        elif name == UNKNOWN_NAME and elem.tag in unknown_vr:
            # A private attribute stored without its VR (implicit VR, or UN) that Orthanc's
            # dictionary cannot name stays binary there; pydicom's own dictionary guesses.
            kind, value = "Null", None
        else:
            kind, value = _leaf(elem)
        if form == "full":
            result[key] = {"Name": name, "Type": kind, "Value": value}
            creator = private_creator(elem, ds)
            if creator is not None and kind != "Sequence":  # Orthanc names none for those
                result[key]["PrivateCreator"] = creator
        elif form == "short":
            result[key] = value
        else:
            # Keyed by name as Orthanc: attributes it cannot name share one key (last wins).
            result[name] = value
    return result


def _private_without_vr(ds: Dataset) -> set[int]:
    """The private tags of ``ds`` stored without a VR of their own (implicit VR, or UN),
    looked at before pydicom converts them with its dictionary's VR."""
    found = set()
    for tag in ds.keys():  # noqa: SIM118 - iterating the data set would convert them
        if tag.is_private:
            raw = ds.get_item(tag)
            if isinstance(raw, RawDataElement) and raw.VR in (None, "UN"):
                found.add(int(tag))
    return found


def private_creator(elem: DataElement, ds: Dataset) -> str | None:
    """The creator of a private data element's block (``None`` for other elements, and for
    a block whose creator is missing)."""
    tag = elem.tag
    if not tag.is_private or tag.element < 0x1000:
        return None
    creator = ds.get((tag.group << 16) | (tag.element >> 8))
    return None if creator is None or creator.value is None else str(creator.value)


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
        result[key if form == "short" else entry["Name"]] = value
    return result


def dicomweb_json(path) -> dict[str, Any]:
    """The DICOM JSON model (PS3.18 F) of a stored file as Orthanc answers ``/file`` asked for
    ``application/dicom+json``: every binary value inline (base64), native pixel data
    included and compressed (encapsulated) pixel data left out, no group lengths, no file
    meta."""
    import pydicom

    # Imported here: the DICOMweb package imports this module.
    from .dicomweb.jsonmodel import PIXEL_TAGS, _empty_values_as_ps3_18

    ds = pydicom.dcmread(path, defer_size=4096)
    syntax = ds.file_meta.get("TransferSyntaxUID")
    for tag in list(ds.keys()):
        if tag.element == 0 or (tag in PIXEL_TAGS and syntax and syntax.is_encapsulated):
            del ds[tag]
    try:
        # Values that break their VR's rules are kept, as Orthanc keeps them (pydicom's
        # suppression reads strictly and would drop them)...
        model = ds.to_json_dict(bulk_data_threshold=2**62)
    except Exception:  # ...unless one cannot be converted at all: then it alone is left out
        model = ds.to_json_dict(bulk_data_threshold=2**62, suppress_invalid_tags=True)
    _empty_values_as_ps3_18(model)
    return dict(sorted(model.items()))


def dicomweb_xml(model: dict[str, Any]) -> bytes:
    """The Native DICOM Model (PS3.19 A.1) of a DICOM JSON model, as UTF-8 XML."""
    from xml.etree import ElementTree

    root = ElementTree.Element("NativeDicomModel",
                               xmlns="http://dicom.nema.org/PS3.19/models/NativeDICOM")  # fmt: skip
    _xml_attributes(root, model)
    return b'<?xml version="1.0" encoding="utf-8"?>\n' + ElementTree.tostring(root, "utf-8")


def _xml_attributes(parent, model: dict[str, Any]) -> None:
    from xml.etree.ElementTree import SubElement

    for key, element in model.items():
        tag = int(key, 16)
        attributes = {"tag": key, "vr": element.get("vr", "UN")}
        try:
            keyword = dictionary_keyword(tag)
        except KeyError:
            keyword = ""
        if keyword:
            attributes["keyword"] = keyword
        node = SubElement(parent, "DicomAttribute", attributes)
        if "InlineBinary" in element:
            SubElement(node, "InlineBinary").text = element["InlineBinary"]
        for number, value in enumerate(element.get("Value", []), start=1):
            if element.get("vr") == "SQ":
                _xml_attributes(SubElement(node, "Item", number=str(number)), value or {})
            elif element.get("vr") == "PN":
                name = SubElement(node, "PersonName", number=str(number))
                for group, text in (value or {}).items():
                    SubElement(name, group).text = text
            elif value is not None:
                SubElement(node, "Value", number=str(number)).text = str(value)
