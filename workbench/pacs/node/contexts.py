"""Presentation contexts, transfer syntaxes and socket setup shared by the SCP and SCU sides.

The node accepts every transfer syntax that pydicom (with the pylibjpeg/pyjpegls plugins
installed) can decode, so that what it receives can always be opened by ``workbench.io``.
The list is computed from pydicom's decoders rather than written down, so installing a new
pixel plugin widens what the node accepts without a code change.
"""

from __future__ import annotations

import contextlib
import copy
import logging
import queue
import socket
import tempfile
import threading
import types
from collections.abc import Iterable
from functools import cache
from typing import Any

from pydicom import uid as dicom_uid
from pydicom.pixels import get_decoder
from pynetdicom import evt
from pynetdicom.pdu_primitives import SCP_SCU_RoleSelectionNegotiation
from pynetdicom.presentation import (
    AllStoragePresentationContexts,
    PresentationContext,
    StoragePresentationContexts,
    build_context,
    build_role,
)
from pynetdicom.sop_class import (
    PatientRootQueryRetrieveInformationModelFind,
    PatientRootQueryRetrieveInformationModelGet,
    PatientRootQueryRetrieveInformationModelMove,
    StudyRootQueryRetrieveInformationModelFind,
    StudyRootQueryRetrieveInformationModelGet,
    StudyRootQueryRetrieveInformationModelMove,
    Verification,
)

from .reactor import wake_on_work

#: Uncompressed transfer syntaxes, in the order the node prefers them when it chooses.
UNCOMPRESSED: tuple[str, ...] = (
    dicom_uid.ExplicitVRLittleEndian,
    dicom_uid.ImplicitVRLittleEndian,
    dicom_uid.DeflatedExplicitVRLittleEndian,
    dicom_uid.ExplicitVRBigEndian,
)

LOGGER = logging.getLogger("workbench.pacs.node")

#: Compressed syntaxes in the order the node prefers them: the ones archives commonly store
#: first, lossless before lossy; any others pydicom can decode come after, by UID.
COMPRESSED_PREFERENCE: tuple[str, ...] = (
    dicom_uid.JPEG2000Lossless,
    dicom_uid.JPEGLosslessSV1,
    dicom_uid.JPEGLSLossless,
    dicom_uid.RLELossless,
    dicom_uid.JPEGLossless,
    dicom_uid.HTJ2KLossless,
    dicom_uid.HTJ2KLosslessRPCL,
    dicom_uid.JPEGBaseline8Bit,
    dicom_uid.JPEGExtended12Bit,
    dicom_uid.JPEG2000,
    dicom_uid.JPEGLSNearLossless,
    dicom_uid.HTJ2K,
)

#: A requestor proposes at most 128 presentation contexts (context IDs are odd, 1-255).
MAX_CONTEXTS = 128

#: The transfer syntaxes pydicom can write when re-encoding pixel data, in preference order.
NATIVE_OUTPUT: tuple[str, ...] = (
    dicom_uid.ExplicitVRLittleEndian,
    dicom_uid.ImplicitVRLittleEndian,
)

FIND_MODELS = {
    "PATIENT": PatientRootQueryRetrieveInformationModelFind,
    "STUDY": StudyRootQueryRetrieveInformationModelFind,
}
MOVE_MODELS = {
    "PATIENT": PatientRootQueryRetrieveInformationModelMove,
    "STUDY": StudyRootQueryRetrieveInformationModelMove,
}
GET_MODELS = {
    "PATIENT": PatientRootQueryRetrieveInformationModelGet,
    "STUDY": StudyRootQueryRetrieveInformationModelGet,
}


def _all_transfer_syntaxes() -> list[dicom_uid.UID]:
    names = (getattr(dicom_uid, name) for name in dir(dicom_uid))
    found = {value for value in names if isinstance(value, dicom_uid.UID)}
    return sorted(value for value in found if value.is_transfer_syntax)


def _preference(syntax: str) -> tuple[int, str]:
    if syntax in COMPRESSED_PREFERENCE:
        return COMPRESSED_PREFERENCE.index(syntax), syntax
    return len(COMPRESSED_PREFERENCE), syntax


@cache
def decodable_compressed() -> tuple[str, ...]:
    """Compressed transfer syntaxes whose pixel data this installation can decode, in the
    node's order of preference (:data:`COMPRESSED_PREFERENCE`)."""
    accepted = []
    for syntax in _all_transfer_syntaxes():
        if not syntax.is_compressed:
            continue
        try:
            if get_decoder(syntax).is_available:
                accepted.append(str(syntax))
        except NotImplementedError:  # video and JPIP syntaxes have no pixel decoder
            continue
    return tuple(sorted(accepted, key=_preference))


def is_lossless(syntax: str) -> bool:
    """Whether a compressed transfer syntax keeps every pixel value.

    JPEG-LS "Near-Lossless" is lossy despite its name.
    """
    uid = dicom_uid.UID(syntax)
    if uid == dicom_uid.JPEGLSNearLossless:
        return False
    return "Lossless" in uid.name or uid == dicom_uid.RLELossless


def accepted_transfer_syntaxes() -> list[str]:
    """Every transfer syntax the storage SCP accepts, in the order it prefers them.

    pynetdicom picks, for each proposed context, the first syntax of *this* list the requestor
    also proposed. Lossless compressed syntaxes come first so a file sent compressed is kept
    as sent (no decoding on the sender, less disk); uncompressed next; lossy syntaxes last,
    so a sender is never asked to compress lossily when it also offered an alternative.
    """
    compressed = decodable_compressed()
    lossless = [syntax for syntax in compressed if is_lossless(syntax)]
    lossy = [syntax for syntax in compressed if not is_lossless(syntax)]
    return [*lossless, *UNCOMPRESSED, *lossy]


def retrieve_storage_contexts(
    stored: Iterable[tuple[str, str | None]] | None, budget: int = MAX_CONTEXTS - 1
) -> tuple[list[PresentationContext], list[SCP_SCU_RoleSelectionNegotiation]]:
    """Storage contexts and SCP role items a C-GET requestor proposes to receive instances.

    The peer sends each instance over a context of its SOP class *and* transfer syntax; if
    several syntaxes share one context, the peer picks one for all instances of the class
    and has to transcode the others (and a peer that cannot encode what it picked fails).
    So every context carries one stored syntax, except the uncompressed one each SOP class
    always gets (Explicit and Implicit VR Little Endian, which any peer can produce).

    Parameters
    ----------
    stored : iterable of (SOP class UID, transfer syntax UID or None), or None
        What the requested instances are, when a query told us: a known syntax gets its own
        context; an unknown one (None) gets a context per syntax the node can decode, most
        preferred first, as far as the budget allows. None when nothing is known: the
        common storage SOP classes of pynetdicom, uncompressed only.
    budget : int
        How many contexts may be used (128 minus the retrieve model's context).

    Returns
    -------
    contexts, roles
        The contexts, and one SCP/SCU role selection item per SOP class (we are the SCP
        of the C-STORE sub-operations, never the SCU, on them).
    """
    native = list(NATIVE_OUTPUT)
    if stored is None:
        pairs: list[tuple[str, str | None]] = [
            (str(cx.abstract_syntax), dicom_uid.ExplicitVRLittleEndian)
            for cx in StoragePresentationContexts
        ]
    else:
        pairs = list(dict.fromkeys((str(sop), syntax) for sop, syntax in stored))
    classes = list(dict.fromkeys(sop for sop, _ in pairs))
    if len(classes) > budget:
        LOGGER.warning(
            "%d SOP classes requested; only the first %d can be proposed", len(classes), budget
        )
        classes = classes[:budget]
    wanted = [(sop, None) for sop in classes]  # None: the uncompressed context
    decodable = set(accepted_transfer_syntaxes())
    wanted += [
        (sop, syntax)
        for sop, syntax in pairs
        if sop in classes and syntax in decodable and syntax != dicom_uid.ExplicitVRLittleEndian
    ]
    unknown = [sop for sop, syntax in pairs if syntax is None and sop in classes]
    wanted += [(sop, syntax) for syntax in decodable_compressed() for sop in unknown]
    wanted = list(dict.fromkeys(wanted))[:budget]
    contexts = [
        build_context(sop, native if syntax is None else [syntax]) for sop, syntax in wanted
    ]
    roles = [build_role(sop, scp_role=True) for sop in classes]
    return contexts, roles


def storage_sop_classes() -> list[str]:
    """Every storage SOP class pynetdicom knows (images, GSPS, SR, SEG, PDF, ...)."""
    return [str(context.abstract_syntax) for context in AllStoragePresentationContexts]


def query_retrieve_sop_classes() -> list[str]:
    """Patient Root and Study Root FIND/MOVE/GET."""
    models = (FIND_MODELS, MOVE_MODELS, GET_MODELS)
    return [str(model) for table in models for model in table.values()]


def verification_sop_class() -> str:
    return str(Verification)


class _QuicklyCopiedContext(PresentationContext):
    """A supported presentation context whose deep copy shares its (immutable) UIDs.

    pynetdicom deep-copies the server's supported contexts for every association it accepts,
    to keep negotiation from altering them. With ~180 storage and query contexts of ~17
    transfer syntaxes each, a generic deep copy of the UID strings costs 10-20 ms per
    association: most of a C-FIND's latency. Only the list needs copying.
    """

    def __deepcopy__(self, memo: dict) -> _QuicklyCopiedContext:
        clone = copy.copy(self)
        clone._transfer_syntax = list(self._transfer_syntax)
        return clone


def quickly_copied(contexts: list[PresentationContext]) -> list[PresentationContext]:
    """The same contexts, as :class:`_QuicklyCopiedContext` (pass to ``start_server``)."""
    result = []
    for context in contexts:
        clone = _QuicklyCopiedContext()
        clone.__dict__.update(context.__dict__)
        clone._transfer_syntax = list(context._transfer_syntax)
        result.append(clone)
    return result


#: How long pynetdicom's DUL loop sleeps when it finds nothing to do (its default: 1 ms).
#: Each C-STORE waits for that loop twice (to send the response, then to see the next
#: request), so 1 ms costs ~2 ms per instance: more than the rest of the protocol work for
#: small instances. 0.2 ms keeps an idle association's CPU use negligible.
RUN_LOOP_DELAY = 0.0002


#: How long an acceptor's reactor waits for the next DIMSE message in each turn of its loop.
#: pynetdicom's acceptor polls for messages, sleeping 1 ms between looks, so a request
#: waits ~0.5-1 ms (more on a busy machine) after it was decoded; waiting on the message
#: queue instead serves it as soon as it is there. Kept short because the same loop also
#: watches for A-RELEASE/A-ABORT and the idle timeout between looks.
ACCEPTOR_MESSAGE_WAIT = 0.001


def _get_msg(dimse: object, block: bool = False) -> tuple:
    """``DIMSEServiceProvider.get_msg`` that leaves a send's response to the send.

    ``Association.send_*()`` pauses the association's reactor (``_reactor_checkpoint``)
    before sending a request, then blocks on the message queue for the response. The pause
    is not atomic: a reactor preempted just after passing its checkpoint, before its
    non-blocking look at the queue, may resume after the response was queued and look
    before the waiting send wakes; it then takes the response, drops it ("Received
    unexpected C-STORE service message") and the send waits out its DIMSE timeout. That
    look is what ``block=False`` is, so it finds nothing while the checkpoint is closed.
    On the accepting side, the look also waits briefly (:data:`ACCEPTOR_MESSAGE_WAIT`)
    rather than being one of many polls; the node's handlers send only from the reactor's
    own thread, so that wait cannot meet a send.
    """
    assoc = dimse.assoc  # type: ignore[attr-defined]
    messages = dimse.msg_queue  # type: ignore[attr-defined]
    try:
        if block:
            return messages.get(timeout=dimse.dimse_timeout)  # type: ignore[attr-defined]
        if not assoc._reactor_checkpoint.is_set():
            return None, None
        if assoc.is_acceptor:
            return messages.get(timeout=ACCEPTOR_MESSAGE_WAIT)
        return messages.get_nowait()
    except queue.Empty:
        return None, None


def keep_responses_for_senders(assoc: object) -> None:
    """Close a pynetdicom race that loses about one response in a few thousand under load.

    See :func:`_get_msg`. Meant for any association, ours or a test's or a benchmark's
    plain pynetdicom client, from an ``EVT_CONN_OPEN`` handler or right after
    ``AE.associate``.
    """
    dimse = assoc.dimse  # type: ignore[attr-defined]
    dimse.get_msg = types.MethodType(_get_msg, dimse)


def _recv_exact(transport: object, nr_bytes: int) -> bytearray:
    """Read exactly ``nr_bytes`` (fewer only if the peer closed) into one buffer.

    pynetdicom reads PDUs 4 KiB at a time and concatenates; a 512x512 CT slice is then ~130
    reads and copies. Reading into a preallocated buffer needs a handful of system calls.
    """
    sock = transport.socket  # type: ignore[attr-defined]
    buffer = bytearray(nr_bytes)
    view = memoryview(buffer)
    received = 0
    while received < nr_bytes:
        count = sock.recv_into(view[received:], nr_bytes - received)
        if not count:
            del view
            return buffer[:received]
        received += count
        if QUICKACK is not None:
            _ack_now(sock)
    return buffer


#: Linux's TCP_QUICKACK (``None`` elsewhere).
QUICKACK = getattr(socket, "TCP_QUICKACK", None)


def _ack_now(sock: socket.socket) -> None:
    """Acknowledge what was read at once rather than after the delayed-ACK timer.

    A peer with Nagle's algorithm on (DCMTK's tools unless ``TCP_NODELAY`` is set in their
    environment) holds the data set's PDU until the command's is acknowledged; with the
    ACK delayed, every C-STORE then waited ~40 ms (20 instances/s). Linux leaves quick-ACK
    mode on its own, so it is asked for after each read.
    """
    with contextlib.suppress(OSError):
        sock.setsockopt(socket.IPPROTO_TCP, QUICKACK, 1)


#: Attribute of an association's DUL thread naming where its received data sets are written.
RECEIVED_INTO = "workbench_received_into"


def receive_into_store(event: evt.Event, index: Any) -> None:
    """``EVT_CONN_OPEN`` handler: the data sets this association receives are written in the
    ``incoming`` directory of ``index``'s store (see :func:`received_file`), on the store's
    filesystem, so they are hard-linked into the store rather than copied; a server killed
    mid-association leaves them there, where start-up clears them."""
    if index is not None:
        setattr(event.assoc.dul, RECEIVED_INTO, str(index.incoming_dir))


def received_file(*args: Any, **kwargs: Any) -> Any:
    """What pynetdicom calls ``NamedTemporaryFile`` when it receives a C-STORE data set
    (``STORE_RECV_CHUNKED_DATASET``): the same file, in the directory
    :func:`receive_into_store` gave the association whose thread decodes it, or where
    :mod:`tempfile` says for any other association of the process."""
    directory = getattr(threading.current_thread(), RECEIVED_INTO, None)
    if directory is not None:
        kwargs.setdefault("dir", directory)
    return tempfile.NamedTemporaryFile(*args, **kwargs)


def set_nodelay(event: evt.Event) -> None:
    """``EVT_CONN_OPEN`` handler turning Nagle's algorithm off on an association's socket.

    DIMSE messages are small command sets followed by data; with Nagle on, each C-STORE
    response waits for the peer's delayed ACK, which caps throughput at a few dozen
    instances per second regardless of how fast either side is.
    """
    sock = getattr(event.assoc.dul.socket, "socket", None)
    if sock is None:
        return
    # The peer may already have gone; there is nothing to tune then.
    with contextlib.suppress(OSError):
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


def tune_association(event: evt.Event) -> None:
    """``EVT_CONN_OPEN`` handler tuning an association's transport for throughput.

    - TCP_NODELAY (see :func:`set_nodelay`);
    - a DUL reactor that waits in ``select`` for data or for something to send
      (:func:`.reactor.wake_on_work`; on TLS, a shorter loop delay, :data:`RUN_LOOP_DELAY`)
      and whole-PDU socket reads, set on this association's objects only (pynetdicom offers
      no public setting for either);
    - responses left to the send waiting for them (:func:`keep_responses_for_senders`) and,
      on the accepting side, requests served as soon as decoded (:data:`ACCEPTOR_MESSAGE_WAIT`).
    """
    set_nodelay(event)
    keep_responses_for_senders(event.assoc)
    transport = event.assoc.dul.socket
    sock = getattr(transport, "socket", None)
    if sock is None:
        return
    if hasattr(event.assoc.dul, "_run_loop_delay"):
        event.assoc.dul._run_loop_delay = RUN_LOOP_DELAY
    if isinstance(sock, socket.socket) and not hasattr(sock, "context"):  # not TLS
        transport.recv = types.MethodType(_recv_exact, transport)
        wake_on_work(event.assoc)
