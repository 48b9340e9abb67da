"""Storage commitment (Push Model), as SCP and as SCU, the way Orthanc 1.6+ does it.

A modality that has sent images asks, with an N-ACTION, whether the PACS takes responsibility
for a list of instances (SOP Class and Instance UIDs, under a Transaction UID).

- **SCP**: the N-ACTION is answered at once; each instance is then looked up in the index
  (present, and of the SOP class the modality gives) and the result goes back in an
  N-EVENT-REPORT on a new association to the modality, found by its AE title among the
  declared ``DicomModalities`` (the asynchronous form IHE RAD-10, Orthanc and most modalities
  use). Only declared modalities may ask (``AllowStorageCommitment``, default true): the
  report has nowhere else to go.
- **SCU**: we send the N-ACTION for instances we sent; the modality's report arrives later
  as an N-EVENT-REPORT on our own port. Reports are kept in memory by Transaction UID, the
  latest :data:`MAX_REPORTS` (Orthanc's ``StorageCommitmentReportsSize``), and shown as
  Orthanc's ``/storage-commitment/{id}``.
"""

from __future__ import annotations

import logging
import threading
from collections import OrderedDict
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from pydicom.dataset import Dataset
from pydicom.uid import generate_uid
from pynetdicom import AE, evt
from pynetdicom.presentation import build_context, build_role
from pynetdicom.sop_class import StorageCommitmentPushModel

from . import access
from .access import Modality
from .scu import DicomNetworkError, associate

LOGGER = logging.getLogger("workbench.pacs.node")

#: The well-known SOP Instance of the Storage Commitment Push Model (PS3.4 J.3.5).
COMMITMENT_INSTANCE = "1.2.840.10008.1.20.1.1"
#: N-ACTION "Request Storage Commitment"; N-EVENT-REPORT "all done" / "some failed".
REQUEST_COMMITMENT, ALL_COMMITTED, SOME_FAILED = 1, 1, 2
#: Failure Reasons (PS3.3 C.14.1.1).
PROCESSING_FAILURE = 0x0110
NO_SUCH_OBJECT_INSTANCE = 0x0112
CLASS_INSTANCE_CONFLICT = 0x0119
REFERENCED_CLASS_NOT_SUPPORTED = 0x0122
DUPLICATE_TRANSACTION_UID = 0x0131
#: What each Failure Reason means, in the words of PS3.3 C.14.1.1.
FAILURE_DESCRIPTIONS = {
    PROCESSING_FAILURE: "A general failure in processing the operation was encountered",
    NO_SUCH_OBJECT_INSTANCE: (
        "One or more of the elements in the Referenced SOP Instance Sequence was not available"
    ),
    CLASS_INSTANCE_CONFLICT: (
        "The SOP Class of an element in the Referenced SOP Instance Sequence did not "
        "correspond to the SOP class registered for this SOP Instance at the SCP"
    ),
    REFERENCED_CLASS_NOT_SUPPORTED: (
        "The SOP Class of an element in the Referenced SOP Instance Sequence was not supported"
    ),
    DUPLICATE_TRANSACTION_UID: (
        "The Transaction UID of the Storage Commitment Request is already in use"
    ),
}
#: Reports kept for ``/storage-commitment/{id}``, oldest forgotten first.
MAX_REPORTS = 100
#: N-ACTION statuses.
SUCCESS, NOT_AUTHORIZED, INVALID_ARGUMENT = 0x0000, 0x0124, 0x0115
NO_SUCH_SOP_CLASS, NO_SUCH_ACTION = 0x0118, 0x0123

Instance = tuple[str, str]
"""(SOP Class UID, SOP Instance UID)."""


@dataclass
class Report:
    """What a modality answered about one storage commitment request of ours."""

    remote_aet: str
    status: str = "Pending"
    success: list[Instance] = field(default_factory=list)
    failures: list[tuple[str, str, int]] = field(default_factory=list)

    def as_orthanc(self) -> dict[str, Any]:
        """The JSON of Orthanc's ``GET /storage-commitment/{id}``."""
        return {
            "Status": self.status,
            "RemoteAET": self.remote_aet,
            "Success": [
                {"SOPClassUID": sop_class, "SOPInstanceUID": sop_instance}
                for sop_class, sop_instance in self.success
            ],
            "Failures": [
                {
                    "Description": FAILURE_DESCRIPTIONS.get(reason, "Unknown failure reason"),
                    "FailureReason": reason,
                    "SOPClassUID": sop_class,
                    "SOPInstanceUID": sop_instance,
                }
                for sop_class, sop_instance, reason in self.failures
            ],
        }


class Reports:
    """The reports of our requests, by Transaction UID (thread-safe, bounded)."""

    def __init__(self, limit: int = MAX_REPORTS) -> None:
        self._reports: OrderedDict[str, Report] = OrderedDict()
        self._lock = threading.Lock()
        self._changed = threading.Condition(self._lock)
        self.limit = limit

    def expect(self, transaction_uid: str, remote_aet: str) -> None:
        """Note a request as pending (before it is sent, so no report can come first)."""
        with self._lock:
            self._reports[transaction_uid] = Report(remote_aet)
            while len(self._reports) > self.limit:
                self._reports.popitem(last=False)

    def receive(self, transaction_uid: str, information: Dataset) -> bool:
        """Record an N-EVENT-REPORT's Event Information; whether we asked for it."""
        with self._lock:
            report = self._reports.get(transaction_uid)
            if report is None:
                return False
            committed = information.get("ReferencedSOPSequence", [])
            report.success = [_instance(item) for item in committed]
            report.failures = [
                (*_instance(item), int(item.get("FailureReason", PROCESSING_FAILURE)))
                for item in information.get("FailedSOPSequence", [])
            ]
            report.status = "Failure" if report.failures else "Success"
            self._changed.notify_all()
            return True

    def get(self, transaction_uid: str) -> Report | None:
        with self._lock:
            return self._reports.get(transaction_uid)

    def wait(self, transaction_uid: str, timeout: float) -> Report | None:
        """The report once it is no longer pending (or as it is after ``timeout`` s)."""
        with self._changed:
            self._changed.wait_for(
                lambda: getattr(self._reports.get(transaction_uid), "status", "") != "Pending",
                timeout,
            )
            return self._reports.get(transaction_uid)


def _instance(item: Dataset) -> Instance:
    return str(item.get("ReferencedSOPClassUID", "")), str(item.get("ReferencedSOPInstanceUID", ""))


def _references(instances: Iterable[Instance]) -> list[Dataset]:
    items = []
    for sop_class, sop_instance in instances:
        item = Dataset()
        item.ReferencedSOPClassUID = sop_class
        item.ReferencedSOPInstanceUID = sop_instance
        items.append(item)
    return items


def check_instances(index: Any, instances: Iterable[Instance]) -> tuple[list, list]:
    """Which instances the index holds with the SOP class given: (committed, failed with a
    Failure Reason)."""
    committed, failed = [], []
    for sop_class, sop_instance in instances:
        found = index.find("Instance", {"SOPInstanceUID": sop_instance}) if sop_instance else []
        if not found:
            failed.append((sop_class, sop_instance, NO_SUCH_OBJECT_INSTANCE))
        elif index.instance_info(found[0])["SopClassUid"] != sop_class:
            failed.append((sop_class, sop_instance, CLASS_INSTANCE_CONFLICT))
        else:
            committed.append((sop_class, sop_instance))
    return committed, failed


# --- SCP -------------------------------------------------------------------------------------


class CommitmentScp:
    """Answers storage commitment requests; reports go out from a thread of their own."""

    def __init__(self, ae: AE, index: Any, config: Any) -> None:
        self.ae, self.index, self.config = ae, index, config
        self._reporter = ThreadPoolExecutor(max_workers=1, thread_name_prefix="commitment")

    def handle_n_action(self, event: evt.Event) -> tuple[int, Dataset | None]:
        """EVT_N_ACTION: accept a request from a declared modality; the report follows."""
        request = event.request
        aet = str(event.assoc.requestor.ae_title).strip()
        if str(request.RequestedSOPClassUID) != StorageCommitmentPushModel:
            return NO_SUCH_SOP_CLASS, None
        if int(request.ActionTypeID) != REQUEST_COMMITMENT:
            return NO_SUCH_ACTION, None
        modality = access.find_by_aet(self.config, aet, str(event.assoc.requestor.address))
        if modality is None or not modality.allow.get("NAction", True):
            LOGGER.warning(
                "Refused a storage commitment request from %s: not a declared modality "
                "allowed storage commitment (its report could not be sent anywhere)",
                aet,
            )
            return NOT_AUTHORIZED, None
        try:
            information = event.action_information
            transaction_uid = str(information.TransactionUID)
            instances = [_instance(item) for item in information.ReferencedSOPSequence]
        except Exception as exc:  # a malformed request: say so, keep serving
            LOGGER.warning("Malformed storage commitment request from %s: %s", aet, exc)
            return INVALID_ARGUMENT, None
        self._reporter.submit(self._report, modality, transaction_uid, instances)
        return SUCCESS, None

    def _report(self, modality: Modality, transaction_uid: str, instances: list[Instance]) -> None:
        try:
            committed, failed = check_instances(self.index, instances)
        except Exception:
            LOGGER.exception("Storage commitment %s: the index could not be read", transaction_uid)
            committed, failed = [], [(*i, PROCESSING_FAILURE) for i in instances]
        information = Dataset()
        information.TransactionUID = transaction_uid
        information.ReferencedSOPSequence = _references(committed)
        if failed:
            information.FailedSOPSequence = _references((c, i) for c, i, _ in failed)
            for item, (_, _, reason) in zip(information.FailedSOPSequence, failed, strict=True):
                item.FailureReason = reason
        try:
            send_report(self.ae, modality, information, SOME_FAILED if failed else ALL_COMMITTED)
        except Exception as exc:
            LOGGER.warning(
                "Storage commitment %s: the report to %s could not be sent: %s",
                transaction_uid,
                modality.aet,
                exc,
            )
        else:
            LOGGER.info(
                "Storage commitment %s: %d committed, %d failed, reported to %s",
                transaction_uid,
                len(committed),
                len(failed),
                modality.aet,
            )

    def close(self) -> None:
        self._reporter.shutdown(wait=False, cancel_futures=True)


def send_report(ae: AE, modality: Modality, information: Dataset, event_type: int) -> None:
    """Send an N-EVENT-REPORT to ``modality`` on a new association, as the SCP of the
    Storage Commitment Push Model (negotiated by role selection)."""
    role = build_role(StorageCommitmentPushModel, scu_role=False, scp_role=True)
    assoc = associate(ae, modality, [build_context(StorageCommitmentPushModel)], ext_neg=[role])
    try:
        status, _ = assoc.send_n_event_report(
            information, event_type, StorageCommitmentPushModel, COMMITMENT_INSTANCE
        )
    finally:
        assoc.release()
    code = getattr(status, "Status", None)
    if code != SUCCESS:
        raise DicomNetworkError(f"{modality.aet} answered the N-EVENT-REPORT with {code}")


# --- SCU -------------------------------------------------------------------------------------


def handle_n_event_report(
    event: evt.Event, reports: Reports, config: Any
) -> tuple[int, Dataset | None]:
    """EVT_N_EVENT_REPORT: a modality's report on one of our requests (from a declared
    modality allowed event reports)."""
    aet = str(event.assoc.requestor.ae_title).strip()
    if str(event.request.AffectedSOPClassUID) != StorageCommitmentPushModel:
        return NO_SUCH_SOP_CLASS, None
    modality = access.find_by_aet(config, aet, str(event.assoc.requestor.address))
    if modality is None or not modality.allow.get("EventReport", True):
        LOGGER.warning("Refused a storage commitment report from %s: not a declared modality "
                       "allowed event reports", aet)  # fmt: skip
        return NOT_AUTHORIZED, None
    try:
        information = event.event_information
        transaction_uid = str(information.TransactionUID)
    except Exception as exc:
        LOGGER.warning("Malformed storage commitment report from %s: %s", aet, exc)
        return INVALID_ARGUMENT, None
    if not reports.receive(transaction_uid, information):
        LOGGER.warning("Storage commitment report from %s for a transaction we did not "
                       "ask for (or forgot): %s", aet, transaction_uid)  # fmt: skip
    return SUCCESS, None


def request_commitment(ae: AE, modality: Modality, instances: list[Instance], reports: Reports
                       ) -> str:  # fmt: skip
    """Ask ``modality`` to commit to ``instances``; the Transaction UID its report will carry.

    Raises
    ------
    DicomNetworkError
        The modality could not be reached, or refused the request.
    """
    transaction_uid = generate_uid()
    reports.expect(transaction_uid, modality.aet)
    information = Dataset()
    information.TransactionUID = transaction_uid
    information.ReferencedSOPSequence = _references(instances)
    assoc = associate(ae, modality, [build_context(StorageCommitmentPushModel)])
    try:
        status, _ = assoc.send_n_action(
            information, REQUEST_COMMITMENT, StorageCommitmentPushModel, COMMITMENT_INSTANCE
        )
    finally:
        assoc.release()
    code = getattr(status, "Status", None)
    if code != SUCCESS:
        raise DicomNetworkError(
            f"{modality.aet} refused the storage commitment request"
            + (f" (status 0x{code:04X})" if code is not None else " (no answer)")
        )
    return transaction_uid
