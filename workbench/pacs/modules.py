"""Orthanc's tables of the DICOM modules of each level: what ``/{level}/{id}/module`` shows,
what a new instance copies from its parent, and which tags a split or merge of studies sets."""

from __future__ import annotations

from .tags import LEVELS

#: The attributes of each level's module, as a real Orthanc 1.10 lists them (its tables of the
#: Patient, General Study, General Series and SOP Common modules).
MODULE_KEYWORDS: dict[str, tuple[str, ...]] = {
    "Patient": (
        "BreedRegistrationSequence", "DeidentificationMethod",
        "DeidentificationMethodCodeSequence", "EthnicGroup", "IssuerOfPatientID",
        "IssuerOfPatientIDQualifiersSequence", "OtherPatientIDs", "OtherPatientIDsSequence",
        "OtherPatientNames", "PatientBirthDate", "PatientBirthTime", "PatientBreedCodeSequence",
        "PatientBreedDescription", "PatientComments", "PatientID", "PatientIdentityRemoved",
        "PatientName", "PatientSex", "PatientSpeciesCodeSequence", "PatientSpeciesDescription",
        "ReferencedPatientSequence", "ResponsibleOrganization", "ResponsiblePerson",
        "ResponsiblePersonRole",
    ),
    "Study": (
        "AccessionNumber", "IssuerOfAccessionNumberSequence", "NameOfPhysiciansReadingStudy",
        "PhysiciansOfRecord", "PhysiciansOfRecordIdentificationSequence",
        "PhysiciansReadingStudyIdentificationSequence", "ProcedureCodeSequence",
        "ReasonForPerformedProcedureCodeSequence", "ReferencedStudySequence",
        "ReferringPhysicianIdentificationSequence", "ReferringPhysicianName",
        "RequestingServiceCodeSequence", "StudyDate", "StudyDescription", "StudyID",
        "StudyInstanceUID", "StudyTime",
    ),
    "Series": (
        "AnatomicalOrientationType", "BodyPartExamined", "CommentsOnThePerformedProcedureStep",
        "Laterality", "Modality", "OperatorIdentificationSequence", "OperatorsName",
        "PatientPosition", "PerformedProcedureStepDescription", "PerformedProcedureStepID",
        "PerformedProcedureStepStartDate", "PerformedProcedureStepStartTime",
        "PerformedProtocolCodeSequence", "PerformingPhysicianIdentificationSequence",
        "PerformingPhysicianName", "ProtocolName", "ReferencedPerformedProcedureStepSequence",
        "RelatedSeriesSequence", "RequestAttributesSequence", "SeriesDate",
        "SeriesDescription", "SeriesDescriptionCodeSequence", "SeriesInstanceUID",
        "SeriesNumber", "SeriesTime", "SmallestPixelValueInSeries",
    ),
    "Instance": (
        "AuthorizationEquipmentCertificationNumber", "CodingSchemeIdentificationSequence",
        "ContributingEquipmentSequence", "EncryptedAttributesSequence",
        "HL7StructuredDocumentReferenceSequence", "InstanceCreationDate",
        "InstanceCreationTime", "InstanceCreatorUID", "InstanceNumber",
        "LongitudinalTemporalInformationModified", "MACParametersSequence",
        "OriginalAttributesSequence", "OriginalSpecializedSOPClassUID",
        "RelatedGeneralSOPClassUID", "SOPAuthorizationComment", "SOPAuthorizationDateTime",
        "SOPClassUID", "SOPInstanceStatus", "SOPInstanceUID", "SpecificCharacterSet",
        "TimezoneOffsetFromUTC",
    ),
}  # fmt: skip


def levels_to(level: str) -> tuple[str, ...]:
    """``level`` and the levels above it."""
    return LEVELS[: LEVELS.index(level) + 1]


def module_keywords(*levels: str) -> frozenset[str]:
    """The keywords of the modules of ``levels``."""
    return frozenset(keyword for level in levels for keyword in MODULE_KEYWORDS[level])
