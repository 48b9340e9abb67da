"""Values of data set elements, converted straight from the raw elements pydicom read.

On first access a pydicom ``Dataset`` turns a raw element into a ``DataElement`` (VR
lookup, validation, hooks) and keeps it. Reading a few dozen values from each of thousands of
headers that way costs more than reading the headers did. :func:`element_value` gives the
same value through pydicom's own value converter and leaves the data set as it was; whatever
the converter does not take plainly is left to the data set.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from pydicom.datadict import dictionary_VR
from pydicom.dataelem import RawDataElement
from pydicom.dataset import Dataset
from pydicom.values import convert_value

#: VRs whose values do not depend on the character set.
PLAIN_VRS = frozenset(
    {"AS", "CS", "DA", "DS", "DT", "FD", "FL", "IS", "SL", "SS", "TM", "UI", "UL", "US"}
)
#: VRs decoded with the data set's Specific Character Set.
TEXT_VRS = frozenset({"LO", "LT", "PN", "SH", "ST", "UC", "UT"})


def raw_vr(tag: int, element: RawDataElement) -> str | None:
    """The VR of a raw element: its own (explicit VR), else the dictionary's (implicit VR).

    ``None`` for a tag the dictionary does not know (a private one, say).
    """
    if element.VR:
        return element.VR
    try:
        return dictionary_VR(tag)
    except KeyError:
        return None


def element_value(dataset: Dataset, tag: int, element: Any = None, vr: str | None = None) -> Any:
    """The value ``dataset[tag].value`` gives, or ``None`` when the element is absent.

    Parameters
    ----------
    dataset : Dataset
        The data set, for its character set and for what is left to it.
    tag : int
        The element's tag.
    element : RawDataElement or DataElement, optional
        ``dataset.get_item(tag)`` when the caller already has it.
    vr : str, optional
        The raw element's VR when the caller already knows it.
    """
    if element is None:
        element = dataset.get_item(tag)
        if element is None:
            return None
    if not isinstance(element, RawDataElement):
        return element.value
    value = raw_element_value(element, vr or raw_vr(tag, element), dataset.original_character_set)
    return dataset[tag].value if value is LEFT_TO_DATASET else value


#: What :func:`raw_element_value` returns for a value it leaves to the data set.
LEFT_TO_DATASET = object()


def raw_element_value(
    element: RawDataElement,
    vr: str | None,
    character_set: str | list[str] | Callable[[], str | list[str]],
) -> Any:
    """The value of a raw element through pydicom's value converter, or
    :data:`LEFT_TO_DATASET` when the data set's own conversion must decide (sequences,
    binary and unknown VRs, and values the converter refuses: the data set warns, fixes or
    raises as configured).

    ``character_set`` is the data set's as pydicom read it (or a callable giving it, called
    only for text).
    """
    if vr in PLAIN_VRS:
        encodings = None
    elif vr in TEXT_VRS:
        encodings = character_set() if callable(character_set) else character_set
    else:
        return LEFT_TO_DATASET
    try:
        return convert_value(vr, element, encodings)
    except Exception:
        return LEFT_TO_DATASET
