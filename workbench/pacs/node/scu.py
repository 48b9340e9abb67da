"""The node as a client: C-ECHO, C-FIND, C-MOVE, C-GET and C-STORE to declared modalities.

Each call opens one association to the modality, does its work and releases it. Errors say
which modality was contacted and what went wrong (unreachable, association rejected, or the
final DIMSE status), because in a notebook the first thing a user needs is whether the AE
title, host or port is wrong.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydicom.dataset import Dataset
from pydicom.filereader import read_file_meta_info
from pynetdicom import AE, evt
from pynetdicom.association import Association
from pynetdicom.presentation import build_context
from pynetdicom.sop_class import Verification

from workbench.pacs.tags import IDENTIFIER, LEVELS, MAIN_TAGS, normalize_level

from . import query
from .access import Modality
from .contexts import (
    FIND_MODELS,
    GET_MODELS,
    MOVE_MODELS,
    receive_into_store,
    retrieve_storage_contexts,
    tune_association,
)
from .scp import handle_store, storage_contexts_for
from .transcode import TranscodeError, prepare_for_send
from .worklist import WORKLIST_FIND

LOGGER = logging.getLogger("workbench.pacs.node")


class DicomNetworkError(RuntimeError):
    """A DIMSE operation with a remote modality failed (association or status)."""


@dataclass
class RetrieveResult:
    """Outcome of a C-MOVE or C-GET: final status and sub-operation counts."""

    status: int
    completed: int = 0
    failed: int = 0
    warning: int = 0
    failed_instances: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.status == 0x0000


@dataclass
class StoreResult:
    """Outcome of sending instances with C-STORE."""

    sent: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)
    #: The SOP Class UID of each instance sent.
    sop_classes: dict[str, str] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not self.failed


def _describe(modality: Modality) -> str:
    return f"modality {modality.name!r} ({modality.aet}@{modality.host}:{modality.port})"


def associate(
    ae: AE,
    modality: Modality,
    contexts: list,
    *,
    ext_neg: list | None = None,
    handlers: list | None = None,
) -> Association:
    """Open an association to ``modality`` or raise :class:`DicomNetworkError`."""
    assoc = ae.associate(
        modality.host,
        modality.port,
        contexts=contexts,
        ae_title=modality.aet,
        ext_neg=ext_neg,
        evt_handlers=[(evt.EVT_CONN_OPEN, tune_association), *(handlers or [])],
    )
    if assoc.is_established:
        return assoc
    if assoc.is_rejected:
        reason = "rejected the association (check the AE titles it expects)"
    else:
        # pynetdicom reports a refused TCP connection as an abort, so the two read alike.
        reason = "is unreachable or aborted the association (check host, port and AE title)"
    raise DicomNetworkError(f"{_describe(modality)} {reason}")


def echo(ae: AE, modality: Modality) -> None:
    """C-ECHO ``modality``; raise :class:`DicomNetworkError` unless it answers success."""
    assoc = associate(ae, modality, [build_context(Verification)])
    try:
        status = assoc.send_c_echo()
    finally:
        assoc.release()
    code = getattr(status, "Status", None)
    if code != 0x0000:
        raise DicomNetworkError(f"C-ECHO to {_describe(modality)} answered {_status(code)}")


def _status(code: int | None) -> str:
    return "nothing (timeout or abort)" if code is None else f"status 0x{code:04X}"


#: The keys Orthanc's REST API adds to a query made to a modality: each level's own
#: identifier down to the queried level, and the Accession Number from the study level on.
ORTHANC_QUERY_KEYS = {
    "Patient": ("PatientID",),
    "Study": ("PatientID", "AccessionNumber", "StudyInstanceUID"),
    "Series": ("PatientID", "AccessionNumber", "StudyInstanceUID", "SeriesInstanceUID"),
    "Instance": (
        "PatientID",
        "AccessionNumber",
        "StudyInstanceUID",
        "SeriesInstanceUID",
        "SOPInstanceUID",
    ),
}


def orthanc_query(level: str, query_keys: dict[str, Any]) -> dict[str, Any]:
    """``query_keys`` with the return keys Orthanc's ``/modalities/{id}/query`` adds, so
    its answers hold what Orthanc's would (use with ``defaults=False``)."""
    keys = dict(query_keys)
    for keyword in ORTHANC_QUERY_KEYS[normalize_level(level)]:
        keys.setdefault(keyword, "")
    return keys


def _identifier(level: str, query_keys: dict[str, Any], *, defaults: bool) -> Dataset:
    level = normalize_level(level)
    keys = {name: ("" if value is None else value) for name, value in query_keys.items()}
    if defaults:
        # Ask for the level's main tags and the identifiers of its parents, as Orthanc does,
        # so an answer is useful without listing return keys by hand.
        for upper in LEVELS[: LEVELS.index(level) + 1]:
            keys.setdefault(IDENTIFIER[upper], "")
        for keyword in MAIN_TAGS[level]:
            keys.setdefault(keyword, "")
    return query.dataset_from_query(level, keys)


def _model(models: dict[str, str], level: str) -> str:
    """The Patient Root model of ``models`` for the Patient level, Study Root for the others."""
    return models["PATIENT" if level == "Patient" else "STUDY"]


def find(
    ae: AE, modality: Modality, level: str, query_keys: dict[str, Any], *, defaults: bool = True
) -> list[Dataset]:
    """C-FIND at ``level`` with ``{keyword: pattern}``; returns the answers as datasets."""
    identifier = _identifier(level, query_keys, defaults=defaults)
    model = _model(FIND_MODELS, normalize_level(level))
    return _c_find(ae, modality, identifier, model, "C-FIND")


def find_worklist(ae: AE, modality: Modality, identifier: Dataset) -> list[Dataset]:
    """Modality Worklist C-FIND with ``identifier``; the scheduled items as datasets."""
    return _c_find(ae, modality, identifier, WORKLIST_FIND, "Worklist C-FIND")


def _c_find(ae: AE, modality: Modality, identifier: Dataset, model: str, what: str
            ) -> list[Dataset]:  # fmt: skip
    """The pending answers of one C-FIND in information ``model``, or an error naming
    ``what`` failed where."""
    assoc = associate(ae, modality, [build_context(model)])
    answers: list[Dataset] = []
    final = None
    try:
        for status, answer in assoc.send_c_find(identifier, model):
            final = getattr(status, "Status", None)
            if final in (0xFF00, 0xFF01) and answer is not None:
                answers.append(answer)
    finally:
        assoc.release()
    if final != 0x0000:
        raise DicomNetworkError(f"{what} at {_describe(modality)} ended with {_status(final)}")
    return answers


def infer_level(query_keys: dict[str, Any]) -> str:
    """The deepest level whose unique key is given (a retrieve names what it wants)."""
    for level in reversed(LEVELS):
        if query_keys.get(IDENTIFIER[level]):
            return level
    raise ValueError(
        "A retrieve query needs PatientID, StudyInstanceUID, SeriesInstanceUID or "
        f"SOPInstanceUID; got {sorted(query_keys)}"
    )


def _retrieve_request(
    query_keys: dict[str, Any], level: str | None, models: dict[str, str]
) -> tuple[Dataset, str]:
    """The identifier of a C-MOVE/C-GET and the model of ``models`` it goes with."""
    level = normalize_level(level) if level else infer_level(query_keys)
    return query.dataset_from_query(level, query_keys), _model(models, level)


def _retrieve_result(responses: Iterable) -> RetrieveResult:
    result = RetrieveResult(status=-1)
    for status, identifier in responses:
        if status is None or "Status" not in status:
            result.status = -1
            break
        result.status = int(status.Status)
        result.completed = int(status.get("NumberOfCompletedSuboperations", result.completed) or 0)
        result.failed = int(status.get("NumberOfFailedSuboperations", result.failed) or 0)
        result.warning = int(status.get("NumberOfWarningSuboperations", result.warning) or 0)
        if identifier is not None and "FailedSOPInstanceUIDList" in identifier:
            failed = identifier.FailedSOPInstanceUIDList
            result.failed_instances = [failed] if isinstance(failed, str) else list(failed)
    return result


def _check_retrieve(result: RetrieveResult, what: str) -> RetrieveResult:
    """``result`` if it ended in success or warning, else a DicomNetworkError naming ``what``."""
    if result.status not in (0x0000, 0xB000):
        raise DicomNetworkError(
            f"{what} ended with {_status(result.status)} "
            f"({result.completed} completed, {result.failed} failed)"
        )
    return result


def move(
    ae: AE, modality: Modality, query_keys: dict[str, Any], target: str, *, level: str | None = None
) -> RetrieveResult:
    """Ask ``modality`` to C-MOVE the matches to the AE title ``target``."""
    identifier, model = _retrieve_request(query_keys, level, MOVE_MODELS)
    assoc = associate(ae, modality, [build_context(model)])
    try:
        result = _retrieve_result(assoc.send_c_move(identifier, target, model))
    finally:
        assoc.release()
    return _check_retrieve(result, f"C-MOVE from {_describe(modality)} to {target}")


def stored_kinds(
    ae: AE, modality: Modality, query_keys: dict[str, Any], level: str | None = None
) -> list[tuple[str, str | None]] | None:
    """(SOP class, transfer syntax or None) of the instances a retrieve would bring.

    An IMAGE-level C-FIND with the retrieve's keys asks for SOP Class UID and Available
    Transfer Syntax UID (PS3.4 C.6.1.1.5); peers that do not keep the latter (Orthanc)
    leave it empty, and the syntax is then unknown. None if the peer refuses the query or
    answers without SOP classes: a retrieve must not fail because its preparation did.
    """
    keys = {key: value for key, value in query_keys.items() if value}
    keys.update(SOPClassUID="", AvailableTransferSyntaxUID="")
    try:
        answers = find(ae, modality, "Instance", keys, defaults=False)
    except (DicomNetworkError, ValueError, KeyError) as exc:
        LOGGER.info(
            "C-GET from %s: no instance query (%s); proposing common classes",
            _describe(modality),
            exc,
        )
        return None
    kinds: list[tuple[str, str | None]] = []
    for answer in answers:
        sop = str(answer.get("SOPClassUID", "") or "")
        if not sop:
            return None
        syntaxes = answer.get("AvailableTransferSyntaxUID") or [None]
        if isinstance(syntaxes, str):
            syntaxes = [syntaxes]
        kinds.extend((sop, str(syntax) if syntax else None) for syntax in syntaxes)
    return list(dict.fromkeys(kinds)) or None


def get(
    ae: AE, modality: Modality, query_keys: dict[str, Any], index: Any, *, level: str | None = None
) -> RetrieveResult:
    """C-GET the matches from ``modality`` into ``index`` over one association.

    The storage contexts are chosen for the instances asked for (see
    :func:`stored_kinds`, :func:`~workbench.pacs.node.contexts.retrieve_storage_contexts`).
    """
    identifier, model = _retrieve_request(query_keys, level, GET_MODELS)
    storage, roles = retrieve_storage_contexts(stored_kinds(ae, modality, query_keys, level))
    handlers = [
        (evt.EVT_CONN_OPEN, receive_into_store, [index]),
        (evt.EVT_C_STORE, _store_retrieved, [index]),
    ]
    assoc = associate(
        ae, modality, [build_context(model), *storage], ext_neg=roles, handlers=handlers
    )
    try:
        result = _retrieve_result(assoc.send_c_get(identifier, model))
    finally:
        assoc.release()
    return _check_retrieve(result, f"C-GET from {_describe(modality)}")


def _store_retrieved(event: evt.Event, index: Any) -> int:
    """A C-STORE sub-operation of our C-GET: stored as any C-STORE, then its temporary file
    removed. pynetdicom removes the file it received a data set into once the handler returns
    only on associations it accepted; on one it requested (ours, for a C-GET) the file would
    stay in the temporary directory, a copy of every instance retrieved."""
    try:
        return handle_store(event, index, None, check=False)
    finally:
        # Best effort, as pynetdicom's own: where an open file cannot be deleted (Windows)
        # the stored instance still counts.
        with contextlib.suppress(OSError):
            Path(event.dataset_path).unlink()


def store(ae: AE, modality: Modality, paths: list[Path], *,
          originator: tuple[str, int] | None = None, timeout: float | None = None,
          progress: Callable[[int, int], None] | None = None) -> StoreResult:  # fmt: skip
    """C-STORE the files at ``paths`` to ``modality`` over one association.

    Files go out byte for byte when the peer accepted their transfer syntax, decoded (or
    re-encoded) otherwise. ``originator`` is the (AE title, message ID) of the C-MOVE these
    stores serve, when they do; ``timeout`` bounds each wait for the peer, in seconds;
    ``progress(done, total)`` is called after each instance (and may raise to stop).
    """
    result = StoreResult()
    if not paths:
        return result
    metas = {path: read_file_meta_info(path) for path in paths}
    pairs = {(str(m.MediaStorageSOPClassUID), str(m.TransferSyntaxUID)) for m in metas.values()}
    assoc = associate(ae, modality, storage_contexts_for(pairs))
    if timeout:
        assoc.dimse_timeout = assoc.network_timeout = timeout
    moved_for = {}
    if originator is not None:
        moved_for = {"originator_aet": originator[0], "originator_id": originator[1]}
    try:
        for done, (path, meta) in enumerate(metas.items()):
            if progress is not None:
                progress(done, len(metas))
            uid = str(meta.MediaStorageSOPInstanceUID)
            try:
                payload = _payload(path, meta, assoc.accepted_contexts)
                status = assoc.send_c_store(payload, **moved_for)
            except (TranscodeError, ValueError) as exc:
                result.failed[uid] = str(exc)
                continue
            code = getattr(status, "Status", None)
            if code in (0x0000, 0xB000, 0xB007, 0xB006):
                result.sent.append(uid)
                result.sop_classes[uid] = str(meta.MediaStorageSOPClassUID)
            else:
                result.failed[uid] = _status(code)
            if not assoc.is_established:
                break
    finally:
        if assoc.is_established:
            assoc.release()
    for meta in metas.values():
        uid = str(meta.MediaStorageSOPInstanceUID)
        if uid not in result.sent and uid not in result.failed:
            result.failed[uid] = "association ended before it was sent"
    return result


def _payload(path: Path, meta: Dataset, contexts: list) -> Path | Dataset:
    sop, syntax = str(meta.MediaStorageSOPClassUID), str(meta.TransferSyntaxUID)
    for context in contexts:
        if context.abstract_syntax == sop and context.transfer_syntax[0] == syntax:
            return path  # sent from the file without decoding (STORE_SEND_CHUNKED_DATASET)
    return prepare_for_send(path, contexts)
