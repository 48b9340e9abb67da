"""Rebuild ``data/sample/`` from the real files in ``../shared/data``.

The demo, the notebooks and the core tests must run where ``../shared`` does not exist (a
user's machine, Binder), so a few MB of real files are kept in the repo. Most are copied as
they are; the two multi-slice series are made smaller *losslessly* (JPEG 2000 reversible,
pixel values identical) and the MR series also loses its private vendor headers, which are
half of each file. Those rows are marked DERIVED in the copied MANIFEST.

Run: ``.venv/bin/python scripts/vendor_sample_data.py``
"""

from __future__ import annotations

import csv
import shutil
import sys
from pathlib import Path

import pydicom
from pydicom.uid import JPEG2000Lossless

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared" / "data"
SAMPLE = REPO / "data" / "sample"
#: Written by hand, kept when the folder is rebuilt.
DOCUMENTATION = {"README.md", "LICENSES.md"}

# Folder in ../shared/data -> (how to vendor it, optional file filter)
COPY_AS_IS = {
    "cr_agfa_mono1_tiny": None,
    "nema_mr1_small_transcodes": None,
    "us_multiframe_ybr422_jpeg": None,
    "us_rgb_bigendian_barre": None,
    "sc_rgb_rle": None,
    "sc_ybr_full_422_uncompressed": None,
    "gsps_agfa": None,
    "deflate_clunie": None,
    "enhanced_mr_siemens_xa10": None,
    "voi_lut_ihe": None,
    "nema_ct1_ge": None,
    "sc_ct_brain_jpeg_siemens": None,
    "us_aloka_palette16": "gdcm-US-ALOKA-16.dcm",
    "enhanced_ct_nema": None,
    "toshiba_ct_j2k": None,
    "siemens_mr_mosaic_uncompressed": None,
    "siemens_mr_mosaic_jpegll": None,
}
TRANSCODE = {
    "series_ct_philips_ingenuity_5mm": {"strip_private": False},
    "series_mr_siemens_t1_sag_HFS": {"strip_private": True},
}


def transcode(source: Path, target: Path, *, strip_private: bool) -> str:
    """Write ``source`` re-encoded as reversible JPEG 2000; return the MANIFEST note."""
    dataset = pydicom.dcmread(source)
    if strip_private:
        dataset.remove_private_tags()
    dataset.compress(JPEG2000Lossless)
    dataset.save_as(target, enforce_file_format=True)
    removed = " and private tags removed" if strip_private else ""
    return f"DERIVED: re-encoded JPEG 2000 Lossless (pixel values identical){removed}"


def main() -> int:
    if not SHARED.is_dir():
        print(f"{SHARED} not found: nothing to vendor from", file=sys.stderr)
        return 1
    with open(SHARED / "MANIFEST.tsv", newline="") as handle:
        reader = csv.DictReader(handle, delimiter="\t")
        columns = reader.fieldnames
        rows = {row["relative_path"]: row for row in reader}
    for entry in SAMPLE.iterdir():
        if entry.is_dir():
            shutil.rmtree(entry)
        elif entry.name not in DOCUMENTATION:
            entry.unlink()
    kept = []
    for relative, row in sorted(rows.items()):
        folder, name = relative.split("/", 1)
        target = SAMPLE / relative
        if folder in COPY_AS_IS and COPY_AS_IS[folder] in (None, name):
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(SHARED / relative, target)
        elif folder in TRANSCODE:
            target.parent.mkdir(parents=True, exist_ok=True)
            note = transcode(SHARED / relative, target, **TRANSCODE[folder])
            row = dict(
                row,
                transfer_syntax="JPEG 2000 Image Compression (Lossless Only)",
                notes=f"{note}; {row['notes']}",
            )
        else:
            continue
        kept.append(row)
    with open(SAMPLE / "MANIFEST.tsv", "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=columns, delimiter="\t", lineterminator="\n")
        writer.writeheader()
        writer.writerows(kept)
    size = sum(p.stat().st_size for p in SAMPLE.rglob("*") if p.is_file())
    print(f"vendored {len(kept)} files, {size / 1e6:.1f} MB into {SAMPLE.relative_to(REPO)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
