"""Where the tests find real DICOM files.

``data/sample`` is vendored and always present, so every test that needs one particular real
file takes it from there and runs on a fresh clone. ``../shared/data`` is the wider corpus
that sits beside the checkout on the project's own machines; tests over "every real file"
run on the sample and, when the wider corpus is there, on it as well (the ``data_root``
fixture, parametrized in ``tests/conftest.py``).
"""

from __future__ import annotations

import csv
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SAMPLE_DATA = REPO / "data" / "sample"
SHARED_DATA = REPO.parent / "shared" / "data"
#: The documentation files of a data folder, which are not DICOM.
NOT_DICOM = {"MANIFEST.tsv", "README.md", "LICENSES.md"}


def data_roots() -> dict[str, Path]:
    """The corpora present on this machine by name: ``sample`` always, ``shared`` if there."""
    roots = {"sample": SAMPLE_DATA}
    if SHARED_DATA.is_dir():
        roots["shared"] = SHARED_DATA
    return roots


def manifest_rows(root: Path) -> list[dict[str, str]]:
    """Rows of ``root/MANIFEST.tsv``, one per file."""
    with (root / "MANIFEST.tsv").open(newline="", encoding="utf-8") as fp:
        return list(csv.DictReader(fp, delimiter="\t"))


def dicom_files(folder: Path) -> list[Path]:
    """Every DICOM file under ``folder`` (the data's documentation files left out)."""
    return sorted(p for p in folder.rglob("*") if p.is_file() and p.name not in NOT_DICOM)


def real_path(relative: str) -> Path:
    """``relative`` in the sample if it is there, else in the wider corpus."""
    sample = SAMPLE_DATA / relative
    return sample if sample.exists() else SHARED_DATA / relative


def present(*relative_paths: str) -> list[str]:
    """Those of ``relative_paths`` that this machine has, in the sample or the wider corpus.

    For parametrized tests whose cases come from both: the sample's cases always run, the
    wider corpus's cases are added where it is present (instead of being skipped).
    """
    return [relative for relative in relative_paths if real_path(relative).exists()]


def uncompressed_copy(path: Path, folder: Path) -> Path:
    """``path`` written into ``folder`` in Explicit VR Little Endian, pixel values unchanged.

    For peers that cannot decode what the sample stores (Debian's DCMTK has no JPEG 2000).
    """
    import pydicom

    dataset = pydicom.dcmread(path)
    if dataset.file_meta.TransferSyntaxUID.is_compressed:
        dataset.decompress()
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / path.name
    dataset.save_as(target, enforce_file_format=True)
    return target


def modified_copy(source: Path, target: Path, change) -> Path:
    """A copy of a real series in ``target`` as a new series, pixels untouched.

    ``change(dataset, index)`` edits each header (``index`` counts the files from the
    lowest slice position up, else by instance number) and returns ``False`` to leave the
    file out. For series the data folders lack: tilted, unevenly spaced, a prior study.
    """
    import pydicom

    target.mkdir(parents=True)
    datasets = [pydicom.dcmread(p) for p in dicom_files(source)]

    def order(ds) -> tuple:
        position = ds.get("ImagePositionPatient")
        return (float(position[2]) if position else 0.0, int(ds.get("InstanceNumber") or 0))

    datasets.sort(key=order)
    series_uid = pydicom.uid.generate_uid()
    for index, ds in enumerate(datasets):
        ds.SeriesInstanceUID = series_uid
        ds.SOPInstanceUID = pydicom.uid.generate_uid()
        ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
        if change(ds, index) is not False:
            ds.save_as(target / f"{index:03d}.dcm")
    return target
