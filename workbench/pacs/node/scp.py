"""Service handlers of the node, bound as ``(evt.EVT_X, handler, [args])`` plain functions.

Every failure becomes a DICOM status with the reason logged. The index's errors carry their
own (``PacsError.dimse_status``: 0xA700 storage full, 0xC210 data we cannot understand, 0xA900
a malformed identifier); besides, 0xA700 when the disk fails, 0xA801 for a C-MOVE to an
undeclared destination, 0x0124 when the calling AE may not use the service.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from pydicom import dcmread
from pydicom.dataset import Dataset
from pydicom.filereader import read_file_meta_info
from pynetdicom import evt
from pynetdicom.presentation import build_context

from workbench.pacs.errors import PacsError

from . import access, query, worklist
from .contexts import NATIVE_OUTPUT, tune_association
from .transcode import TranscodeError, prepare_for_send

LOGGER = logging.getLogger("workbench.pacs.node")

SUCCESS = 0x0000
PENDING = 0xFF00
CANCEL = 0xFE00
#: C-FIND failure "Unable to process" (PS3.4 C.4.1.1.4).
UNABLE_TO_PROCESS = 0xC000
NOT_AUTHORIZED = 0x0124
OUT_OF_RESOURCES = 0xA700
PROCESSING_FAILURE = 0xC211
MOVE_DESTINATION_UNKNOWN = 0xA801
# Patient Root models' UIDs contain ".1.2.1." (FIND .1.2.1.1, MOVE .1.2.1.2, GET .1.2.1.3).
_PATIENT_ROOT_PREFIX = "1.2.840.10008.5.1.4.1.2.1."


def _peer(event: evt.Event) -> tuple[str, str]:
    requestor = event.assoc.requestor
    return str(requestor.ae_title).strip(), str(requestor.address)


def _root(event: evt.Event) -> str:
    sop_class = str(event.request.AffectedSOPClassUID)
    return "PATIENT" if sop_class.startswith(_PATIENT_ROOT_PREFIX) else "STUDY"


def _allowed(event: evt.Event, config: Any, service: str) -> bool:
    aet, address = _peer(event)
    if access.is_allowed(config, service, aet, address):
        return True
    LOGGER.warning(
        "Refused C-%s from %s at %s: the AE is not declared in DicomModalities and "
        "DicomAlwaysAllow%s is false",
        service.upper(),
        aet,
        address,
        service,
    )
    return False


def handle_echo(event: evt.Event, config: Any) -> int:
    """C-ECHO: success, unless unknown peers may not verify (``DicomAlwaysAllowEcho``)."""
    return SUCCESS if _allowed(event, config, "Echo") else NOT_AUTHORIZED


def handle_store(event: evt.Event, index: Any, config: Any | None, check: bool = True) -> int:
    """C-STORE: hand the received Part-10 file to the index; acknowledge once it is durable
    and indexed.

    pynetdicom has already written the file meta and the data set, as received and never
    decoded, to a temporary file fragment by fragment (``STORE_RECV_CHUNKED_DATASET``), so a
    large multi-frame instance never sits in memory whole. ``ingest_received`` fsyncs and
    links that file into the store while it parses the header and prepares the rows.
    ``check`` is false for C-STOREs we asked for ourselves (C-GET sub-operations).
    """
    if check and config is not None and not _allowed(event, config, "Store"):
        return NOT_AUTHORIZED
    aet, address = _peer(event)
    sop_instance = str(event.request.AffectedSOPInstanceUID)
    try:
        result = index.ingest_received(
            event.dataset_path,
            remote_aet=aet,
            origin="DicomProtocol",
            label=f"data set received from {aet}",
        )
    except PacsError as exc:  # storage full, invalid instance...: the error knows its status
        LOGGER.error(
            "C-STORE %s from %s refused (0x%04X): %s", sop_instance, aet, exc.dimse_status, exc
        )
        return exc.dimse_status
    except OSError:
        LOGGER.exception("C-STORE %s from %s failed writing to storage", sop_instance, aet)
        return OUT_OF_RESOURCES
    except Exception:
        LOGGER.exception(
            "C-STORE %s from %s (%s) failed while indexing", sop_instance, aet, address
        )
        return PROCESSING_FAILURE
    LOGGER.debug("C-STORE %s from %s: %s", sop_instance, aet, result.status)
    return SUCCESS


def handle_find(event: evt.Event, index: Any, config: Any) -> Iterator[tuple[int, Dataset | None]]:
    """C-FIND on Patient Root and Study Root, all four levels, answered from the index; and
    on the Modality Worklist model, answered from the worklist files."""
    if not _allowed(event, config, "Find"):
        yield NOT_AUTHORIZED, None
        return
    if str(event.request.AffectedSOPClassUID) == worklist.WORKLIST_FIND:
        yield from _worklist_find(event, config)
        return
    try:
        parsed = query.parse_identifier(event.identifier, _root(event))
        resources = list(query.find_resources(index, parsed))
    except PacsError as exc:  # a malformed identifier or pattern
        LOGGER.error("C-FIND from %s refused: %s", _peer(event)[0], exc)
        yield exc.dimse_status, None
        return
    aet = access.option(config, "DicomAet")
    for resource in resources:
        if event.is_cancelled:
            yield CANCEL, None
            return
        yield PENDING, query.build_answer(resource, parsed, aet)


def _worklist_find(event: evt.Event, config: Any) -> Iterator[tuple[int, Dataset | None]]:
    try:
        answers = worklist.worklist_answers(config, event.identifier)
    except (ValueError, PacsError) as exc:
        LOGGER.error("Worklist C-FIND from %s refused: %s", _peer(event)[0], exc)
        yield UNABLE_TO_PROCESS, None
        return
    for answer in answers:
        if event.is_cancelled:
            yield CANCEL, None
            return
        yield PENDING, answer


def _instances(event: evt.Event, index: Any) -> list[str]:
    return query.instances_for_retrieve(index, event.identifier, _root(event))


def _sop_and_syntax(path: Path) -> tuple[str, str]:
    meta = read_file_meta_info(path)
    return str(meta.MediaStorageSOPClassUID), str(meta.TransferSyntaxUID)


def storage_contexts_for(pairs: set[tuple[str, str]]) -> list:
    """Contexts to propose for sending instances of these (SOP class, transfer syntax) pairs.

    Each SOP class gets one uncompressed context (so anything can be sent after decoding)
    and one context per stored compressed syntax (so it can be sent as is); compressed
    contexts are dropped first if the 128-context limit is reached.
    """
    native = [build_context(sop, list(NATIVE_OUTPUT)) for sop in sorted({s for s, _ in pairs})]
    own = [
        build_context(sop, [syntax]) for sop, syntax in sorted(pairs) if syntax not in NATIVE_OUTPUT
    ]
    return (native + own)[:128]


def _capture_association(event: evt.Event, holder: dict) -> None:
    holder["assoc"] = event.assoc


def handle_move(event: evt.Event, index: Any, config: Any) -> Iterator[Any]:
    """C-MOVE to a destination declared in ``DicomModalities`` (0xA801 otherwise)."""
    destination_aet = event.move_destination
    if isinstance(destination_aet, bytes):
        destination_aet = destination_aet.decode("ascii", errors="replace")
    destination = access.find_by_aet(config, destination_aet.strip())
    if destination is None or not _allowed(event, config, "Move"):
        if destination is None:
            LOGGER.error(
                "C-MOVE from %s to %r refused: destination not in DicomModalities",
                _peer(event)[0],
                destination_aet,
            )
        # pynetdicom answers a missing destination with 0xA801 (Move Destination unknown).
        yield None, None
        return
    try:
        paths = [index.instance_path(instance) for instance in _instances(event, index)]
        contexts = storage_contexts_for({_sop_and_syntax(path) for path in paths})
    except PacsError as exc:
        LOGGER.error("C-MOVE from %s refused: %s", _peer(event)[0], exc)
        yield destination.host, destination.port
        yield 1
        yield exc.dimse_status, None
        return
    holder: dict = {}
    handlers = [
        (evt.EVT_CONN_OPEN, tune_association),
        (evt.EVT_ACCEPTED, _capture_association, [holder]),
    ]
    yield destination.host, destination.port, {"contexts": contexts, "evt_handlers": handlers}
    yield len(paths)
    for path in paths:
        if event.is_cancelled:
            yield CANCEL, None
            return
        yield PENDING, _prepared(path, holder["assoc"].accepted_contexts)


def _prepared(path: Path, contexts: list) -> Dataset:
    try:
        return prepare_for_send(path, contexts)
    except TranscodeError as exc:
        # Sending the file unchanged makes pynetdicom count a failed sub-operation with its
        # SOP Instance UID in the Failed SOP Instance UID List, which is what the peer needs.
        LOGGER.error("%s", exc)
        return dcmread(path, stop_before_pixels=True)


def handle_get(event: evt.Event, index: Any, config: Any) -> Iterator[Any]:
    """C-GET: send the matches back on the same association, over the contexts the requestor
    accepted the SCP role for, transcoding when it did not accept the stored syntax."""
    if not _allowed(event, config, "Get"):
        yield 1
        yield NOT_AUTHORIZED, None
        return
    try:
        instances = _instances(event, index)
    except PacsError as exc:
        LOGGER.error("C-GET from %s refused: %s", _peer(event)[0], exc)
        yield 1
        yield exc.dimse_status, None
        return
    yield len(instances)
    for instance in instances:
        if event.is_cancelled:
            yield CANCEL, None
            return
        yield PENDING, _prepared(index.instance_path(instance), event.assoc.accepted_contexts)
