"""Names of private attributes as Orthanc shows them in ``/tags`` (``CSAImageHeaderInfo``,
``OffsetFromCTMRImages``...).

Orthanc names private tags from DCMTK's private dictionary (its ``LoadPrivateDictionary``
option, on by default). Where DCMTK is installed its ``private.dic`` is read, so names agree
with Orthanc's exactly, unknown ones included; elsewhere pydicom's private dictionary is used,
its descriptions written as keywords ("CSA Image Header Info" → ``CSAImageHeaderInfo``, which
is how DCMTK names most of the same entries).
"""

from __future__ import annotations

import os
import re
from functools import cache
from glob import glob
from pathlib import Path

from pydicom.datadict import private_dictionary_description

#: Where Debian's (and DCMTK's default build's) dictionaries are installed.
DCMTK_DICTIONARY_GLOBS = ("/usr/share/libdcmtk*/private.dic", "/usr/share/dcmtk*/private.dic",
                          "/usr/local/share/dcmtk*/private.dic")  # fmt: skip
_ENTRY = re.compile(
    r'\((?P<group>[0-9A-Fa-f]{4})(?:-o-(?P<last>[0-9A-Fa-f]{4}))?,"(?P<creator>[^"]*)",'
    r"(?P<element>[0-9A-Fa-f]{2})\)\t+[^\t]+\t+(?P<name>[^\t]+)"
)


def dcmtk_dictionary_path() -> Path | None:
    """DCMTK's ``private.dic``: from ``DCMDICTPATH`` as DCMTK reads it, else where DCMTK's
    packages install it; ``None`` when DCMTK is not installed."""
    for entry in os.environ.get("DCMDICTPATH", "").split(os.pathsep):
        if entry.endswith("private.dic") and Path(entry).is_file():
            return Path(entry)
    for pattern in DCMTK_DICTIONARY_GLOBS:
        found = sorted(glob(pattern))
        if found:
            return Path(found[-1])
    return None


@cache
def dcmtk_names() -> tuple[dict[tuple[int, str, int], str], list[tuple[int, int, str, int, str]]]:
    """DCMTK's private names: ``(group, creator, element byte) → name``, and the entries
    that hold for a range of odd groups ``(first, last, creator, element byte, name)``."""
    exact: dict[tuple[int, str, int], str] = {}
    ranges: list[tuple[int, int, str, int, str]] = []
    path = dcmtk_dictionary_path()
    if path is None:
        return exact, ranges
    with open(path, encoding="latin-1") as handle:
        for line in handle:
            match = _ENTRY.match(line)
            if match is None:
                continue
            group, element = int(match["group"], 16), int(match["element"], 16)
            # Names are read without blanks, as DCMTK reads them ("End NumberForBaseline").
            name = "".join(match["name"].split())
            if match["last"]:
                ranges.append((group, int(match["last"], 16), match["creator"], element, name))
            else:
                # DCMTK keeps the first entry of a tag listed twice.
                exact.setdefault((group, match["creator"], element), name)
    return exact, ranges


def _keyword(description: str) -> str:
    words = re.split(r"[^0-9A-Za-z]+", description)
    return "".join(word[:1].upper() + word[1:] for word in words if word)


def private_name(tag: int, creator: str) -> str | None:
    """The name of private attribute ``tag`` of ``creator``'s block, or ``None`` if the
    dictionary Orthanc uses does not know it."""
    group, element = tag >> 16, tag & 0xFF
    if dcmtk_dictionary_path() is not None:
        exact, ranges = dcmtk_names()
        name = exact.get((group, creator, element))
        if name is None:
            name = next((entry[4] for entry in ranges if entry[0] <= group <= entry[1]
                         and entry[2] == creator and entry[3] == element), None)  # fmt: skip
        return name
    try:
        return _keyword(private_dictionary_description(tag, creator)) or None
    except KeyError:
        return None
