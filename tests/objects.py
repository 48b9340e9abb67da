"""Non-image DICOM objects made from real sample images, for tests of folders that hold them.

A study folder from a PACS export holds more than images: presentation states (a real Agfa
GSPS and one of ours), a Comprehensive SR, a segmentation and a key object selection (built
with highdicom), and an encapsulated PDF (built with pydicom). :func:`add_non_image_objects`
writes them into a folder beside the images they refer to; :func:`folder_snapshot` tells
whether a folder was left as it was.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import highdicom as hd
import numpy as np
import pydicom
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.sr.codedict import codes
from pydicom.uid import ExplicitVRLittleEndian, generate_uid

from workbench.io import gsps
from workbench.io.presentation import Annotation, ImageReference, PresentationState

SAMPLE = Path(__file__).resolve().parents[1] / "data" / "sample"
REAL_GSPS = SAMPLE / "gsps_agfa" / "GSPS_PS.dcm"
#: A one-page PDF, as small as a valid one gets.
PDF = (
    b"%PDF-1.1\n1 0 obj<</Type/Catalog/Pages 2 0 R>>endobj\n"
    b"2 0 obj<</Type/Pages/Kids[3 0 R]/Count 1>>endobj\n"
    b"3 0 obj<</Type/Page/Parent 2 0 R/MediaBox[0 0 200 200]>>endobj\n"
    b"trailer<</Root 1 0 R>>\n%%EOF\n"
)
#: File name and kind (as :mod:`workbench.io.objects` names it) of each object written.
KINDS = {
    "GSPS_PS.dcm": "presentation state",
    "ours_PR.dcm": "presentation state",
    "report_SR.dcm": "structured report",
    "mask_SEG.dcm": "segmentation",
    "keys_KO.dcm": "key object selection",
    "document_PDF.dcm": "encapsulated document",
}


def folder_snapshot(folder: Path) -> dict[str, tuple[int, int]]:
    """Every file and folder below ``folder`` with its size and modification time."""
    return {
        str(path.relative_to(folder)): (path.stat().st_size, path.stat().st_mtime_ns)
        for path in folder.rglob("*")
    }


def _images(folder: Path) -> list[Dataset]:
    found = []
    for path in sorted(p for p in folder.iterdir() if p.is_file()):
        ds = pydicom.dcmread(path)
        if "PixelData" in ds:
            found.append(ds)
    return sorted(found, key=lambda ds: int(ds.InstanceNumber))


def _encapsulated_pdf(image: Dataset) -> Dataset:
    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.MediaStorageSOPClassUID = pydicom.uid.EncapsulatedPDFStorage
    ds.file_meta.MediaStorageSOPInstanceUID = generate_uid()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    for keyword in ("PatientID", "PatientName", "PatientBirthDate", "PatientSex",
                    "StudyInstanceUID", "StudyDate", "StudyTime", "StudyID",
                    "AccessionNumber", "ReferringPhysicianName"):  # fmt: skip
        setattr(ds, keyword, image.get(keyword, ""))
    ds.SOPClassUID = pydicom.uid.EncapsulatedPDFStorage
    ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID
    ds.Modality = "DOC"
    ds.SeriesInstanceUID = generate_uid()
    ds.SeriesNumber = 95
    ds.SeriesDescription = "Referral letter"
    ds.InstanceNumber = 1
    ds.ConversionType = "WSD"
    ds.ContentDate, ds.ContentTime = image.StudyDate, "120000"
    ds.AcquisitionDateTime = image.StudyDate + "120000"
    ds.BurnedInAnnotation = "YES"
    ds.DocumentTitle = "Referral"
    ds.ConceptNameCodeSequence = []
    ds.MIMETypeOfEncapsulatedDocument = "application/pdf"
    ds.EncapsulatedDocument = PDF + (b"\0" if len(PDF) % 2 else b"")
    ds.EncapsulatedDocumentLength = len(PDF)
    return ds


def add_non_image_objects(folder: Path, *, images: Path | None = None) -> dict[str, str]:
    """Write one object of each non-image kind into ``folder``; return file name → kind.

    Parameters
    ----------
    folder
        Where to write (created if needed).
    images
        The image series the objects refer to (default: ``folder`` itself).
    """
    folder.mkdir(parents=True, exist_ok=True)
    series = _images(images or folder)
    first = series[0]
    shutil.copy(REAL_GSPS, folder / "GSPS_PS.dcm")

    ref = ImageReference(str(first.SOPClassUID), str(first.SOPInstanceUID))
    mark = Annotation("arrow", [(100, 100), (200, 200)], ref, "look here")
    gsps.write(PresentationState("Ours", [mark]), [first]).save_as(folder / "ours_PR.dcm")

    common = {"manufacturer": "workbench tests", "series_number": 90, "instance_number": 1}
    container = hd.sr.ContainerContentItem(name=codes.DCM.ImagingMeasurementReport)
    container.ContentSequence = [
        hd.sr.TextContentItem(name=codes.DCM.Finding, value="Four inserts seen",
                              relationship_type=hd.sr.RelationshipTypeValues.CONTAINS)
    ]  # fmt: skip
    report = hd.sr.ComprehensiveSR(
        evidence=[first], content=container, series_instance_uid=hd.UID(),
        sop_instance_uid=hd.UID(), **common,
    )  # fmt: skip
    report.save_as(folder / "report_SR.dcm")

    keys = hd.ko.KeyObjectSelectionDocument(
        evidence=[first],
        content=hd.ko.KeyObjectSelection(codes.DCM.OfInterest, [first]),
        series_instance_uid=hd.UID(), sop_instance_uid=hd.UID(),
        **{**common, "series_number": 91},
    )  # fmt: skip
    keys.save_as(folder / "keys_KO.dcm")

    sources = series[:2]
    mask = np.zeros((len(sources), int(first.Rows), int(first.Columns)), dtype=bool)
    mask[:, 40:60, 40:60] = True
    segment = hd.seg.SegmentDescription(
        segment_number=1, segment_label="insert",
        segmented_property_category=codes.SCT.Tissue, segmented_property_type=codes.SCT.Tissue,
        algorithm_type=hd.seg.SegmentAlgorithmTypeValues.MANUAL,
    )  # fmt: skip
    segmentation = hd.seg.Segmentation(
        source_images=sources, pixel_array=mask,
        segmentation_type=hd.seg.SegmentationTypeValues.BINARY,
        segment_descriptions=[segment], series_instance_uid=hd.UID(),
        sop_instance_uid=hd.UID(), manufacturer_model_name="tests", software_versions="0",
        device_serial_number="0", **{**common, "series_number": 92},
    )  # fmt: skip
    segmentation.save_as(folder / "mask_SEG.dcm")

    _encapsulated_pdf(first).save_as(folder / "document_PDF.dcm", enforce_file_format=True)
    return dict(KINDS)
