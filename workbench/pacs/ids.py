"""Orthanc's public identifiers of patients, studies, series and instances."""

from __future__ import annotations

import hashlib


def orthanc_id(*parts: str) -> str:
    """Return the Orthanc identifier of a resource given its DICOM identifiers.

    Orthanc hashes ``PatientID``, then ``PatientID|StudyInstanceUID``, and so on down to the
    SOPInstanceUID, with SHA-1 and writes the digest as five dash-separated groups of eight
    hexadecimal digits.

    Examples
    --------
    >>> orthanc_id("")
    'da39a3ee-5e6b4b0d-3255bfef-95601890-afd80709'
    """
    digest = hashlib.sha1("|".join(parts).encode("utf-8")).hexdigest()
    return "-".join(digest[i : i + 8] for i in range(0, 40, 8))


def resource_ids(patient_id: str, study_uid: str, series_uid: str, sop_uid: str) -> tuple:
    """Return the Orthanc IDs of (patient, study, series, instance) for one instance."""
    return (
        orthanc_id(patient_id),
        orthanc_id(patient_id, study_uid),
        orthanc_id(patient_id, study_uid, series_uid),
        orthanc_id(patient_id, study_uid, series_uid, sop_uid),
    )
