"""A corpus of damaged and hostile files made from real DICOM files, reproducibly.

Each variant is ``(kind, description, data)``. Mutations work on the bytes of real files
(truncation, bit flips, element lengths and VRs rewritten in place, huge declared lengths),
and a few builders write structurally hostile files from scratch (deeply nested sequences,
missing identifiers, files that are not DICOM at all).
"""

from __future__ import annotations

import copy
import hashlib
import io
import random
import struct
import zipfile
from dataclasses import dataclass
from pathlib import Path

import pydicom
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, ImplicitVRLittleEndian, generate_uid

#: VRs whose explicit-VR element header has a 4-byte length (after 2 reserved bytes).
LONG_VRS = {
    b"OB",
    b"OD",
    b"OF",
    b"OL",
    b"OV",
    b"OW",
    b"SQ",
    b"UC",
    b"UN",
    b"UR",
    b"UT",
    b"SV",
    b"UV",
}
SEED_MAX_BYTES = 200_000
NOT_DICOM = {"MANIFEST.tsv", "README.md", "LICENSES.md"}


@dataclass(frozen=True)
class Variant:
    kind: str
    description: str
    data: bytes


@dataclass(frozen=True)
class Element:
    """Where one top-level element's header and value sit in a file."""

    tag: int
    vr: bytes | None  # None for implicit VR
    length_offset: int
    length_size: int
    value_offset: int


def seed_files(*folders: Path) -> list[Path]:
    """Small real DICOM files (one per distinct content) from ``folders``."""
    seen: set[str] = set()
    seeds = []
    for folder in folders:
        for path in sorted(folder.rglob("*")):
            if not path.is_file() or path.name in NOT_DICOM:
                continue
            if path.stat().st_size > SEED_MAX_BYTES:
                continue
            digest = hashlib.sha1(path.read_bytes()).hexdigest()
            if digest not in seen:
                seen.add(digest)
                seeds.append(path)
    return seeds


def element_map(data: bytes) -> list[Element]:
    """Top-level elements (file meta included) of a little-endian Part-10 file."""
    ds = pydicom.dcmread(io.BytesIO(data), stop_before_pixels=False, defer_size=None)
    found = []
    for dataset in (ds.file_meta, ds):
        for tag in list(dataset.keys()):
            raw = dataset.get_item(tag)
            if not hasattr(raw, "value_tell") or raw.value_tell is None:
                continue
            if not raw.is_little_endian or raw.length == 0xFFFFFFFF:
                continue
            tell = raw.value_tell
            if raw.is_implicit_VR:
                found.append(Element(int(tag), None, tell - 4, 4, tell))
            elif data[tell - 8 : tell - 6] in LONG_VRS and data[tell - 6 : tell - 4] == b"\0\0":
                found.append(Element(int(tag), data[tell - 8 : tell - 6], tell - 4, 4, tell))
            else:
                found.append(Element(int(tag), data[tell - 4 : tell - 2], tell - 2, 2, tell))
    return found


class Mutator:
    """Reproducible damage to one real file's bytes."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng

    def truncate(self, data: bytes, elements: list[Element]) -> tuple[str, bytes]:
        where = self.rng.choice(["anywhere", "header", "pixel", "meta"])
        if where == "meta":
            cut = self.rng.randrange(0, min(len(data), 400))
        elif where == "header" and elements:
            cut = self.rng.choice(elements).value_offset + self.rng.randrange(-6, 6)
        elif where == "pixel":
            cut = len(data) - self.rng.randrange(1, max(2, len(data) // 3))
        else:
            cut = self.rng.randrange(0, len(data))
        cut = max(0, min(cut, len(data) - 1))
        return f"truncated at {cut} of {len(data)} ({where})", data[:cut]

    def bit_flips(self, data: bytes, elements: list[Element]) -> tuple[str, bytes]:
        buffer = bytearray(data)
        count = self.rng.choice([1, 2, 4, 8, 32])
        header_end = max((e.value_offset for e in elements), default=len(data))
        limit = header_end if self.rng.random() < 0.8 else len(data)
        limit = max(133, min(limit, len(data)))
        positions = sorted(self.rng.randrange(128, limit) for _ in range(count))
        for position in positions:
            buffer[position] ^= 1 << self.rng.randrange(8)
        return f"{count} bit flip(s) at {positions[:4]}...", bytes(buffer)

    def wrong_length(self, data: bytes, elements: list[Element]) -> tuple[str, bytes]:
        element = self.rng.choice(elements)
        size = element.length_size
        fmt = "<H" if size == 2 else "<I"
        (old,) = struct.unpack_from(fmt, data, element.length_offset)
        limit = 0xFFFF if size == 2 else 0xFFFFFFFE
        new = self.rng.choice(
            [
                0,
                1,
                old + 1,
                max(0, old - 1),
                old * 2 + 3,
                old + 1000,
                self.rng.randrange(0, min(limit, 1 << 20)),
            ]
        )
        new = min(new, limit)
        buffer = bytearray(data)
        struct.pack_into(fmt, buffer, element.length_offset, new)
        return (
            f"length of ({element.tag >> 16:04X},{element.tag & 0xFFFF:04X}) {old} -> {new}",
            bytes(buffer),
        )

    def huge_length(self, data: bytes, elements: list[Element]) -> tuple[str, bytes]:
        element = self.rng.choice(elements)
        buffer = bytearray(data)
        if element.length_size == 4:
            new = self.rng.choice([0xFFFFFFF0, 0x7FFFFFFF, 0xFFFFFFFE, 0x10000000])
            struct.pack_into("<I", buffer, element.length_offset, new)
        else:
            new = 0xFFFF
            struct.pack_into("<H", buffer, element.length_offset, new)
        return (
            f"declared length of ({element.tag >> 16:04X},{element.tag & 0xFFFF:04X}) "
            f"set to {new:#x}",
            bytes(buffer),
        )

    def bogus_vr(self, data: bytes, elements: list[Element]) -> tuple[str, bytes]:
        explicit = [e for e in elements if e.vr is not None and e.length_size == 2]
        if not explicit:
            return self.bit_flips(data, elements)
        element = self.rng.choice(explicit)
        vr_offset = element.length_offset - 2
        bogus = self.rng.choice(
            [b"ZZ", b"\x00\x00", b"\xff\xff", b"ob", b"SQ", b"UN", b"OB", b"UT", b"QQ", b"A1"]
        )
        buffer = bytearray(data)
        buffer[vr_offset : vr_offset + 2] = bogus
        return (
            f"VR of ({element.tag >> 16:04X},{element.tag & 0xFFFF:04X}) set to {bogus!r}",
            bytes(buffer),
        )

    def mutate(self, data: bytes, elements: list[Element]) -> tuple[str, str, bytes]:
        kind = self.rng.choice(["truncate", "bit_flips", "wrong_length", "huge_length", "bogus_vr"])
        if kind != "truncate" and kind != "bit_flips" and not elements:
            kind = "truncate"
        description, mutated = getattr(self, kind)(data, elements)
        return kind, description, mutated


# ------------------------------------------------------------------------ built variants
def _part10(ds: Dataset, transfer_syntax: str = ExplicitVRLittleEndian) -> bytes:
    ds.file_meta = FileMetaDataset()
    ds.file_meta.MediaStorageSOPClassUID = ds.get("SOPClassUID", "1.2.840.10008.5.1.4.1.1.7")
    ds.file_meta.MediaStorageSOPInstanceUID = ds.get("SOPInstanceUID") or generate_uid()
    ds.file_meta.TransferSyntaxUID = transfer_syntax
    buffer = io.BytesIO()
    ds.save_as(buffer, enforce_file_format=True)
    return buffer.getvalue()


def _deep_sequence_bytes(template: Dataset, depth: int, *, terminated: bool) -> bytes:
    """A Part-10 file whose ReferencedSeriesSequence nests ``depth`` undefined-length items."""
    head = copy.deepcopy(template)
    for keyword in ("PixelData",):
        if keyword in head:
            del head[keyword]
    head.SOPInstanceUID = generate_uid()
    prefix = _part10(head)
    opening = (
        struct.pack("<HH", 0x0008, 0x1115)
        + b"SQ\0\0"
        + b"\xff\xff\xff\xff"
        + struct.pack("<HHI", 0xFFFE, 0xE000, 0xFFFFFFFF)
    )
    closing = struct.pack("<HHI", 0xFFFE, 0xE00D, 0) + struct.pack("<HHI", 0xFFFE, 0xE0DD, 0)
    body = opening * depth
    if terminated:
        body += closing * depth
    # (0008,1115) sorts before the template's later top-level elements but pydicom reads
    # whatever order it finds; appending keeps the prefix a valid file up to this point.
    return prefix + body


def built_variants(template: Dataset, rng: random.Random) -> list[Variant]:
    """Hand-made hostile files: deep nesting, missing identifiers, not DICOM at all."""
    variants: list[Variant] = []
    for depth in (8, 64, 300, 2000, 20000):
        for terminated in (True, False):
            variants.append(
                Variant(
                    "deep_sequence",
                    f"{depth} nested sequences, terminated={terminated}",
                    _deep_sequence_bytes(template, depth, terminated=terminated),
                )
            )

    for keyword in ("SOPInstanceUID", "StudyInstanceUID", "SeriesInstanceUID"):
        for mode in ("missing", "empty"):
            ds = copy.deepcopy(template)
            ds.SOPInstanceUID = generate_uid()
            if mode == "missing":
                del ds[keyword]
            else:
                setattr(ds, keyword, "")
            variants.append(Variant(f"{mode}_uid", f"{keyword} {mode}", _part10(ds)))
    no_meta = copy.deepcopy(template)
    no_meta.SOPInstanceUID = generate_uid()
    full = _part10(no_meta)
    (group_length,) = struct.unpack_from("<I", full, 132 + 8)
    bare = full[132 + 12 + group_length :]
    variants.append(Variant("no_meta", "bare data set without preamble or file meta", bare))
    variants.append(
        Variant("no_meta", "preamble + DICM then a bare data set", b"\0" * 128 + b"DICM" + bare)
    )
    implicit = copy.deepcopy(template)
    implicit.SOPInstanceUID = generate_uid()
    data = _part10(implicit, ImplicitVRLittleEndian)
    variants.append(
        Variant(
            "meta_lies",
            "implicit data set declared explicit",
            data.replace(
                ImplicitVRLittleEndian.encode(), ExplicitVRLittleEndian.encode()[:17] + b"\0", 1
            ),
        )
    )
    unknown_ts = copy.deepcopy(template)
    unknown_ts.SOPInstanceUID = generate_uid()
    variants.append(
        Variant(
            "meta_lies", "unknown transfer syntax UID", _part10(unknown_ts, "1.2.3.4.5.6.7.8.9")
        )
    )

    # Interrupted copies of instances nobody stored yet: only the pixel data is cut short.
    for syntax in (ExplicitVRLittleEndian, ImplicitVRLittleEndian):
        fresh = copy.deepcopy(template)
        fresh.SOPInstanceUID = generate_uid()
        data = _part10(fresh, syntax)
        pixels_at = data.rfind(b"\xe0\x7f\x10\x00")
        for keep in (0.2, 0.6, 0.99):
            cut = pixels_at + 12 + int((len(data) - pixels_at - 12) * keep)
            variants.append(
                Variant(
                    "truncated_new",
                    f"new instance ({syntax.name}) cut at {cut} of {len(data)}, inside Pixel Data",
                    data[:cut],
                )
            )
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w") as handle:
        handle.writestr("junk.dcm", b"not dicom at all")
    not_dicom = [
        ("empty", b""),
        ("one byte", b"\0"),
        ("preamble only", b"\0" * 128),
        ("preamble and magic only", b"\0" * 128 + b"DICM"),
        ("text", b"hello, this is not an image\n" * 20),
        ("json", b'{"PatientID": "x", "Modality": "CT"}'),
        ("png header", b"\x89PNG\r\n\x1a\n" + bytes(rng.randrange(256) for _ in range(500))),
        ("zip of junk", archive.getvalue()),
        ("broken zip", b"PK\x03\x04" + bytes(rng.randrange(256) for _ in range(300))),
        ("html", b"<html><body>404</body></html>"),
    ]
    for size in (16, 132, 1000, 20000):
        not_dicom.append((f"{size} random bytes", bytes(rng.randrange(256) for _ in range(size))))
        not_dicom.append(
            (
                f"DICM + {size} random bytes",
                b"\0" * 128 + b"DICM" + bytes(rng.randrange(256) for _ in range(size)),
            )
        )
    for description, data in not_dicom:
        variants.append(Variant("not_dicom", description, data))
    return variants


def build_corpus(
    seeds: list[Path], template: Dataset, *, count: int, seed: int = 20261123
) -> list[Variant]:
    """``count`` mutated variants of ``seeds`` plus the hand-made ones, reproducibly."""
    rng = random.Random(seed)
    originals = [(path, path.read_bytes()) for path in seeds]
    maps = {}
    for path, data in originals:
        try:
            maps[path] = element_map(data)
        except Exception:  # big-endian or odd seeds: only byte-level damage then
            maps[path] = []
    mutator = Mutator(rng)
    variants = built_variants(template, rng)
    while len(variants) < count:
        path, data = rng.choice(originals)
        kind, description, mutated = mutator.mutate(data, maps[path])
        variants.append(Variant(kind, f"{path.parent.name}/{path.name}: {description}", mutated))
    return variants
