"""What an object derived from images (a presentation state, a report...) takes from them.

A derived object repeats its images' patient and study (PS3.3 C.7.1, C.7.2): highdicom copies
the root attributes of those modules from the first image. Real scanners write values there
that a strict writer refuses, so the header is made valid first (:func:`valid_header`):

- a date or time in the ACR-NEMA or ISO 8601 notation (``1997.04.24``, ``1970-01-31``,
  ``15:26:10``) or with more than six fraction digits is written in the standard form of the
  same value;
- any other value that pydicom's validation rejects is emptied when the attribute is Type 2,
  left out when it is optional, each with a warning naming the tag and the file;
- such a value in a Type 1 attribute leaves out its optional module (clinical trial...) with
  a warning, and is refused, with an error naming the tag and the file, in a mandatory one;
  inside a sequence (other patient IDs...) it leaves out its item.

:func:`character_set` picks a Specific Character Set under which every copied text and every
text of ours encodes, and :func:`follow_images` completes the modules whose presence the images
decide (de-identification, clinical trial, laterality).
"""

from __future__ import annotations

import copy
import re
import warnings
from collections.abc import Iterable, Sequence
from functools import cache

import pydicom.charset
from highdicom import _standard_utils as standard
from highdicom.enum import SpecificCharacterSetValues
from pydicom import config
from pydicom.datadict import dictionary_VR, keyword_for_tag, tag_for_keyword
from pydicom.dataelem import DataElement
from pydicom.dataset import Dataset
from pydicom.multival import MultiValue
from pydicom.tag import Tag
from pydicom.valuerep import validate_value

# The information entities whose root attributes highdicom copies into a derived object.
_COPIED_ENTITIES = ("Patient", "Study")
_TEXT_VRS = {"SH", "LO", "ST", "LT", "UT", "UC", "PN"}
_ACR_NEMA_DATE = re.compile(r"^(\d{4})[.-](\d{2})[.-](\d{2})$")
_ACR_NEMA_TIME = re.compile(r"^(\d{2})(?::?(\d{2})(?::?(\d{2})(?:\.(\d+))?)?)?$")
_DEFAULT_REPERTOIRE = "ISO_IR 6"
# Said in DeidentificationMethod when images say their identity was removed but not how
# (PS3.3 C.7.1.1 requires one of the method attributes then).
NOT_RECORDED = "as the referenced images; method not recorded in them"


def source_name(image: Dataset) -> str:
    """How errors and warnings name an image: its file, else its SOP Instance UID."""
    filename = getattr(image, "filename", None)
    if isinstance(filename, str) and filename:
        return filename
    return f"image {image.get('SOPInstanceUID', '(no SOP Instance UID)')}"


def tag_name(tag: int) -> str:
    """``(0008,0020) StudyDate`` for a tag."""
    tag = Tag(tag)
    return f"({tag.group:04X},{tag.element:04X}) {keyword_for_tag(tag) or 'private'}"


@cache
def _modules(sop_class_uid: str) -> dict[str, tuple[str, dict[str, str]]]:
    """Module key → (usage, {keyword: Type}) for the patient and study modules of an IOD."""
    iod = standard.get_sop_class_iod_map()[sop_class_uid]
    attributes = standard.get_module_attribute_map()
    modules = {}
    for module in standard.get_iod_module_map()[iod]:
        if module["ie"] in _COPIED_ENTITIES:
            items = attributes[module["key"]]
            types = {item["keyword"]: item["type"] for item in items if not item["path"]}
            modules[module["key"]] = (module["usage"], types)
    return modules


def copied_modules(image: Dataset) -> dict[str, tuple[str, dict[str, str]]]:
    """The modules a derived object copies from ``image``: key → (usage, {keyword: Type}).

    Raises
    ------
    ValueError
        If the image's (0008,0016) SOP Class UID is not a standard storage class.
    """
    sop_class = str(image.get("SOPClassUID", ""))
    try:
        return _modules(sop_class)
    except KeyError:
        raise ValueError(
            f"{source_name(image)}: (0008,0016) SOP Class UID {sop_class!r} is not a standard "
            "storage class, so its patient and study attributes are not known"
        ) from None


def _standard_form(vr: str, value: str) -> str | None:
    """The standard notation of a legacy date or time, or ``None`` when there is none."""
    value = value.strip()
    if vr == "DA" and (match := _ACR_NEMA_DATE.match(value)):
        return "".join(match.groups())
    if vr == "TM" and (match := _ACR_NEMA_TIME.match(value)):
        hours, minutes, seconds, fraction = match.groups()
        text = hours + (minutes or "") + (seconds or "")
        # TM holds at most six fraction digits (microseconds); more are dropped, not rounded.
        return text + (f".{fraction[:6]}" if fraction else "")
    return None


def _problem(vr: str, value) -> str | None:
    """Why pydicom's validation rejects a value (each value of a multi-valued one), if it does."""
    values = value if isinstance(value, (MultiValue, list, tuple)) else [value]
    for item in values:
        if vr in ("DS", "IS"):
            item = str(item)  # pydicom keeps the number as written; that text is what is copied
        try:
            validate_value(vr, item, config.RAISE)
        except ValueError as error:
            return str(error)
    return None


def _repaired(vr: str, value) -> object | None:
    """The value in standard notation when every part of it has one, else ``None``."""
    values = value if isinstance(value, (MultiValue, list, tuple)) else [value]
    repaired = [
        str(item) if _problem(vr, str(item)) is None else _standard_form(vr, str(item))
        for item in values
    ]
    if any(item is None for item in repaired):
        return None
    if _problem(vr, repaired):
        return None
    return repaired if len(repaired) > 1 else repaired[0]


def shallow_copy(image: Dataset) -> Dataset:
    """A new data set holding ``image``'s elements, file meta and file name."""
    header = Dataset()
    header.update({elem.tag: elem for elem in image})
    if hasattr(image, "file_meta"):
        header.file_meta = image.file_meta
    header.filename = getattr(image, "filename", None)
    return header


def valid_header(image: Dataset) -> Dataset:
    """A copy of ``image`` whose patient and study attributes hold only valid values.

    Parameters
    ----------
    image
        An image header (read with ``stop_before_pixels=True`` or complete).

    Returns
    -------
    pydicom.Dataset
        A copy (shallow but for the sequences it repairs); the image itself is not changed.

    Raises
    ------
    ValueError
        If a Type 1 patient or study attribute holds a value no standard form repairs, or the
        image is of a SOP class the standard does not define; the message names the tag and
        the file.

    Warns
    -----
    UserWarning
        For each value rewritten in standard notation, emptied or left out.
    """
    modules = copied_modules(image)
    nested = _nested_types(str(image.SOPClassUID))
    header = shallow_copy(image)
    for usage, types in modules.values():
        for keyword, kind in types.items():
            tag = tag_for_keyword(keyword)
            if tag not in header:
                continue
            if header[tag].VR == "SQ":
                # Copied whole by highdicom: repair a copy, never the caller's items.
                header[tag] = copy.deepcopy(header[tag])
                _make_items_valid(header[tag], (keyword,), nested, image)
                continue
            try:
                _make_valid(header, tag, kind, image)
            except _Required as required:
                if usage == "M":
                    raise ValueError(str(required)) from None
                # follow_images then leaves the whole optional module out.
                del header[tag]
                warnings.warn(f"{required}; left out", stacklevel=2)
    return header


class _Required(ValueError):
    """A Type 1 value that is not valid and has no standard form."""


def _make_valid(dataset: Dataset, tag: int, kind: str, image: Dataset, path: str = "") -> None:
    """Rewrite, empty or leave out one invalid value of ``dataset`` (see :func:`valid_header`).

    Raises
    ------
    _Required
        For a Type 1 value, which the caller leaves out with what holds it, or refuses.
    """
    elem = dataset[tag]
    # UIDs are copied as they are: a derived object must name its study exactly as the
    # images do, even where they break the UID rules.
    if elem.VR == "UI" or elem.value in (None, ""):
        return
    problem = _problem(elem.VR, elem.value)
    if problem is None:
        return
    where = f"{source_name(image)}: {path}{tag_name(tag)} {elem.value!r}"
    repaired = _repaired(elem.VR, elem.value)
    if repaired is not None:
        dataset[tag] = DataElement(tag, elem.VR, repaired)
        warnings.warn(f"{where} is not valid {elem.VR}; copied as {repaired!r}", stacklevel=3)
    elif kind == "1":
        raise _Required(f"{where} is not valid ({problem}) and is required")
    elif kind.startswith("2"):
        dataset[tag] = DataElement(tag, elem.VR, None)
        warnings.warn(f"{where} is not valid ({problem}); copied empty", stacklevel=3)
    else:
        del dataset[tag]
        warnings.warn(f"{where} is not valid ({problem}); left out", stacklevel=3)


def _make_items_valid(
    sequence: DataElement, path: tuple[str, ...], nested: dict, image: Dataset
) -> None:
    """:func:`_make_valid` on every value of a sequence's items; an item whose Type 1 value
    cannot be made valid is left out."""
    types = nested.get(path, {})
    where = "".join(f"{tag_name(tag_for_keyword(k))} > " for k in path)
    kept = []
    for item in sequence.value:
        try:
            for elem in list(item):
                if elem.tag.is_private:  # no standard rules to check a private value against
                    continue
                if elem.VR == "SQ":
                    _make_items_valid(elem, (*path, elem.keyword), nested, image)
                else:
                    _make_valid(item, elem.tag, types.get(elem.keyword, "3"), image, where)
        except _Required as required:
            warnings.warn(f"{required}; its item is left out", stacklevel=2)
            continue
        kept.append(item)
    sequence.value = kept


@cache
def _nested_types(sop_class_uid: str) -> dict[tuple[str, ...], dict[str, str]]:
    """Sequence path → {keyword: Type} inside the copied modules' sequences."""
    iod = standard.get_sop_class_iod_map()[sop_class_uid]
    attributes = standard.get_module_attribute_map()
    nested: dict[tuple[str, ...], dict[str, str]] = {}
    for module in standard.get_iod_module_map()[iod]:
        if module["ie"] in _COPIED_ENTITIES:
            for item in attributes[module["key"]]:
                if item["path"]:
                    nested.setdefault(tuple(item["path"]), {})[item["keyword"]] = item["type"]
    return nested


def copied_texts(image: Dataset) -> list[str]:
    """The text values of ``image`` that a derived object copies (to choose its character set)."""
    texts = []
    keywords = [k for _, types in copied_modules(image).values() for k in types]
    for keyword in keywords:
        tag = tag_for_keyword(keyword)
        if tag in image and dictionary_VR(tag) in _TEXT_VRS and image[tag].value:
            value = image[tag].value
            values = value if isinstance(value, (MultiValue, list, tuple)) else [value]
            texts += [str(item) for item in values]
    return texts


def _encodes(texts: Iterable[str], terms: Sequence[str]) -> bool:
    """Whether every text encodes under a Specific Character Set without loss."""
    encodings = pydicom.charset.convert_encodings(list(terms) or [_DEFAULT_REPERTOIRE])
    # pydicom writes the default repertoire with a Latin-1 codec; it is ASCII (PS3.5 6.1.2.1).
    encodings = ["ascii" if e == "iso8859" else e for e in encodings]
    for text in texts:
        try:
            if len(encodings) == 1:
                encoder = pydicom.charset.custom_encoders.get(encodings[0])
                encoder(text) if encoder else text.encode(encodings[0])
                continue
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                pydicom.charset.encode_string(text, encodings)
            if caught:  # pydicom warns when it falls back to replacement characters
                return False
        except UnicodeError:
            return False
    return True


def _terms(value) -> list[str]:
    """Specific Character Set values as a list; an empty first of several is ISO 2022 IR 6."""
    if not value:
        return []
    values = value if isinstance(value, (MultiValue, list, tuple)) else [value]
    terms = [str(v).strip() for v in values]
    if len(terms) > 1 and not terms[0]:
        terms[0] = "ISO 2022 IR 6"  # PS3.3 C.12.1.1.2: the default repertoire, extended
    return terms


def _accepted(terms: list[str]) -> bool:
    """Whether a Specific Character Set is one the standard (and highdicom) accepts as written.

    One value must be a term without code extensions; several must all be ISO 2022 terms,
    the first of them single-byte (PS3.3 C.12.1.1.2).
    """
    known = {v.value for v in SpecificCharacterSetValues}
    if not terms or not all(t in known for t in terms):
        return False
    extensions = [t.startswith("ISO 2022") for t in terms]
    if len(terms) == 1:
        return not extensions[0]
    multi_byte_first = terms[0] in ("ISO 2022 IR 87", "ISO 2022 IR 159", "ISO 2022 IR 149")
    return all(extensions) and not multi_byte_first


def _without_extensions(terms: list[str]) -> list[str] | None:
    """The single term without code extensions that decodes like a single ISO 2022 term."""
    if len(terms) != 1:
        return None
    codec = pydicom.charset.python_encoding.get(terms[0])
    if codec is None:
        return None
    if codec == "iso8859":
        return []
    for term, other in pydicom.charset.python_encoding.items():
        if other == codec and term.startswith("ISO_IR") and _accepted([term]):
            return [term]
    return None


def character_set(image: Dataset, texts: Iterable[str]) -> str | list[str] | None:
    """A Specific Character Set for a derived object holding ``texts`` and the image's texts.

    The image's own when it is valid and holds everything (copied values keep their bytes);
    else its equivalent without code extensions (a single ``ISO 2022 IR 100`` is
    ``ISO_IR 100``); else the default repertoire, Latin-1 or UTF-8, the first that holds
    every text. Latin-1 comes before UTF-8 because older readers handle it better.

    Returns
    -------
    str, list of str or None
        The (0008,0005) value; ``None`` for the default repertoire.
    """
    texts = [*texts, *copied_texts(image)]
    own = _terms(image.get("SpecificCharacterSet"))
    candidates = [own] if _accepted(own) else []
    plain = _without_extensions(own)
    if plain is not None:
        candidates.append(plain)
    candidates += [[], ["ISO_IR 100"]]
    for terms in candidates:
        if _encodes(texts, terms):
            return None if not terms else terms[0] if len(terms) == 1 else terms
    return "ISO_IR 192"


def follow_images(derived: Dataset, images: Sequence[Dataset]) -> None:
    """Complete, in ``derived``, the modules whose presence its images decide.

    - De-identification: images marked (0012,0062) Patient Identity Removed ``YES`` without
      a method get (0012,0063) De-identification Method saying so (PS3.3 C.7.1.1).
    - Optional patient and study modules (clinical trial subject and study, patient study)
      copied in part: missing Type 2 attributes are added empty; a module missing a Type 1
      attribute is left out with a warning naming it.
    - (0020,0060) Laterality (General Series, Type 2C): the images' own when they agree on
      one, else empty.
    """
    first = images[0]
    if str(derived.get("PatientIdentityRemoved", "")).upper() == "YES" and not (
        derived.get("DeidentificationMethod") or derived.get("DeidentificationMethodCodeSequence")
    ):
        derived.DeidentificationMethod = NOT_RECORDED
    for module, (usage, types) in copied_modules(first).items():
        if usage == "M":
            continue
        present = [k for k in types if k in derived]
        if not present:
            continue
        missing = [k for k, kind in types.items() if kind == "1" and not derived.get(k)]
        if missing:
            for keyword in present:
                delattr(derived, keyword)
            warnings.warn(
                f"{source_name(first)}: the {module.replace('-', ' ')} module lacks "
                f"{tag_name(tag_for_keyword(missing[0]))}; it is left out",
                stacklevel=2,
            )
            continue
        for keyword, kind in types.items():
            if kind == "2" and keyword not in derived:
                setattr(derived, keyword, None)
    lateralities = {str(ds.get("Laterality") or "").strip() for ds in images}
    laterality = lateralities.pop() if len(lateralities) == 1 else ""
    derived.Laterality = laterality if laterality in ("R", "L") else None
