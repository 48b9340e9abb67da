"""The DICOM node: a background pynetdicom server over the index, and a client of modalities."""

from __future__ import annotations

import logging
import tempfile
import time
from pathlib import Path
from typing import Any

from pydicom.dataset import Dataset
from pynetdicom import AE, _config, dimse_messages, evt
from pynetdicom.sop_class import StorageCommitmentPushModel
from pynetdicom.transport import AssociationServer

from workbench.pacs.tags import LEVELS

from . import access, scu
from .commitment import CommitmentScp, Instance, Reports, handle_n_event_report, request_commitment
from .contexts import (
    UNCOMPRESSED,
    accepted_transfer_syntaxes,
    query_retrieve_sop_classes,
    quickly_copied,
    receive_into_store,
    received_file,
    storage_sop_classes,
    tune_association,
    verification_sop_class,
)
from .scp import handle_echo, handle_find, handle_get, handle_move, handle_store
from .worklist import WORKLIST_FIND

LOGGER = logging.getLogger("workbench.pacs.node")

#: Enough for several modalities sending at once plus the node's own retrieves.
MAX_ASSOCIATIONS = 32
#: Larger PDUs mean fewer fragments to reassemble per instance on the receiving side.
MAX_PDU_SIZE = 256 * 1024


def _configure_pynetdicom() -> None:
    # Received data sets are written to a file fragment by fragment as they arrive and
    # handed to the index undecoded, so memory stays flat whatever the size of an instance;
    # files we send are streamed from disk the same way.
    _config.STORE_RECV_CHUNKED_DATASET = True
    _config.STORE_SEND_CHUNKED_DATASET = True
    # ... into the store's incoming/ for the associations of a node (receive_into_store);
    # pynetdicom has no setting for where, and calls this name of its module.
    dimse_messages.NamedTemporaryFile = received_file
    # pynetdicom formats every C-FIND answer for a debug log line even when nobody listens;
    # with hundreds of answers that formatting costs more than finding them.
    _config.LOG_RESPONSE_IDENTIFIERS = False


def receive_on_storage(index: Any) -> None:
    """Make every temporary file of this process in the store's ``incoming`` directory
    (:data:`tempfile.tempdir`).

    The data sets a node's associations receive go there anyway (see
    :func:`.contexts.receive_into_store`); this takes the process's other temporary files
    (uploads being unpacked, archives being built) there too, on the store's filesystem,
    where start-up clears what a killed server left. For processes that only serve
    (``workbench serve``, DICOM workers): it changes the temporary directory of the whole
    process.
    """
    tempfile.tempdir = str(index.incoming_dir)


class DicomNode:
    """A DIMSE node (C-ECHO/STORE/FIND/MOVE/GET as SCP and SCU) sharing the index's store.

    Parameters
    ----------
    index : workbench.pacs.Index
        Where received instances go and what queries and retrieves read.
    config : workbench.pacs.config.Config
        ``DicomAet``, ``DicomPort`` (0 picks a free port), ``BindAddress``,
        ``RemoteAccessAllowed`` (binds all interfaces), ``DicomModalities`` and Orthanc's
        access options (see :mod:`workbench.pacs.node.access`).

    Examples
    --------
    >>> node = DicomNode(index, config)
    >>> node.start()
    >>> node.echo("PACS")
    >>> studies = node.find("PACS", "Study", {"PatientName": "DOE^*", "StudyDate": "2024-"})
    >>> node.move("PACS", {"StudyInstanceUID": studies[0].StudyInstanceUID})
    """

    def __init__(self, index: Any, config: Any) -> None:
        self.index = index
        self.config = config
        self._server: AssociationServer | None = None
        #: With ``DicomWorkerProcesses`` > 1, the processes serving associations.
        self.workers: Any = None
        self.ae = self._make_ae()
        #: Reports on our storage commitment requests, by Transaction UID.
        self.commitment_reports = Reports()
        self._commitment_scp = CommitmentScp(self.ae, index, config)

    # -- lifecycle -------------------------------------------------------------------------

    @property
    def aet(self) -> str:
        """Our AE title (``DicomAet``)."""
        return str(access.option(self.config, "DicomAet"))

    @property
    def host(self) -> str:
        """The interface the node listens on (loopback unless remote access is allowed)."""
        if access.option(self.config, "RemoteAccessAllowed"):
            return "0.0.0.0"
        return str(access.option(self.config, "BindAddress"))

    @property
    def port(self) -> int:
        """The port the node listens on (the one actually bound once started)."""
        if self.workers is not None:
            return self.workers.port
        if self._server is not None:
            return int(self._server.server_address[1])
        return int(access.option(self.config, "DicomPort"))

    @property
    def is_running(self) -> bool:
        return self._server is not None or self.workers is not None

    @property
    def worker_processes(self) -> int:
        """How many processes serve associations (``DicomWorkerProcesses``; 1: this one)."""
        count = access.option(self.config, "DicomWorkerProcesses")
        if isinstance(count, bool) or not isinstance(count, int) or count < 1:
            raise ValueError(f"DicomWorkerProcesses must be a whole number >= 1, not {count!r}")
        return count

    def _make_ae(self) -> AE:
        _configure_pynetdicom()
        ae = AE(ae_title=self.aet)
        ae.maximum_associations = MAX_ASSOCIATIONS
        ae.maximum_pdu_size = MAX_PDU_SIZE
        ae.require_called_aet = bool(access.option(self.config, "DicomCheckCalledAet"))
        syntaxes = accepted_transfer_syntaxes()
        ae.add_supported_context(verification_sop_class(), list(UNCOMPRESSED))
        for sop_class in [*query_retrieve_sop_classes(), WORKLIST_FIND]:
            ae.add_supported_context(sop_class, list(UNCOMPRESSED))
        # Requests come from SCUs; reports on our own requests come from their SCPs, which
        # propose the SCP role for themselves.
        ae.add_supported_context(
            StorageCommitmentPushModel, list(UNCOMPRESSED), scu_role=True, scp_role=True
        )
        for sop_class in storage_sop_classes():
            # scp_role/scu_role let C-GET requestors take the SCP role for the sub-operations
            # while ordinary C-STORE requestors use these contexts as usual.
            ae.add_supported_context(sop_class, syntaxes, scu_role=False, scp_role=True)
        return ae

    def start(self) -> None:
        """Start listening in background threads (returns at once); with
        ``DicomWorkerProcesses`` > 1, start that many worker processes and hand each
        association to one of them (:mod:`.pool`)."""
        if self.is_running:
            return
        if self.worker_processes > 1:
            from .pool import WorkerPool

            self.workers = WorkerPool(self, self.worker_processes)
            self.workers.start()
            LOGGER.info("DICOM node %s listening on %s:%d, %d worker processes", self.aet,
                        self.host, self.port, self.worker_processes)  # fmt: skip
            return
        self._server = self.ae.start_server(
            (self.host, int(access.option(self.config, "DicomPort"))),
            block=False,
            evt_handlers=self._handlers(),
            contexts=quickly_copied(self.ae.supported_contexts),
        )
        LOGGER.info("DICOM node %s listening on %s:%d", self.aet, self.host, self.port)

    def serve_handed(self, address: tuple[str, int], on_closed: Any) -> AssociationServer:
        """Serve connections accepted by another process (a worker of :mod:`.pool`): the
        returned server's ``process_request(sock, client_address)`` takes each one;
        ``on_closed()`` is called as each ends. ``address``: where the acceptor listens."""
        handlers = [*self._handlers(), (evt.EVT_CONN_CLOSE, lambda _event: on_closed())]
        self._server = self.ae.make_server(
            address,
            evt_handlers=handlers,
            contexts=quickly_copied(self.ae.supported_contexts),
            server_class=_HandedServer,
        )
        return self._server

    def _handlers(self) -> list:
        return [
            (evt.EVT_CONN_OPEN, tune_association),
            (evt.EVT_CONN_OPEN, receive_into_store, [self.index]),
            (evt.EVT_C_ECHO, handle_echo, [self.config]),
            (evt.EVT_C_STORE, handle_store, [self.index, self.config]),
            (evt.EVT_C_FIND, handle_find, [self.index, self.config]),
            (evt.EVT_C_MOVE, handle_move, [self.index, self.config]),
            (evt.EVT_C_GET, handle_get, [self.index, self.config]),
            (evt.EVT_N_ACTION, self._commitment_scp.handle_n_action),
            (evt.EVT_N_EVENT_REPORT, handle_n_event_report, [self.commitment_reports, self.config]),
        ]

    def stop(self, grace: float = 5.0) -> None:
        """Stop listening and end the associations in progress (worker processes give
        theirs ``grace`` seconds to finish before aborting them)."""
        if self.workers is not None:
            self.workers.stop(grace)
            self.workers = None
        if self._server is None:
            return
        if isinstance(self._server, _HandedServer):
            self._server.close(grace)
        else:
            self._server.shutdown()
        self._server = None

    def modalities_changed(self) -> None:
        """``DicomModalities`` changed (over REST): tell the worker processes, if any."""
        if self.workers is not None:
            self.workers.broadcast({"modalities": self.config.DicomModalities})

    def __enter__(self) -> DicomNode:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    # -- client side -----------------------------------------------------------------------

    def modality(self, name: str) -> access.Modality:
        """The modality declared as ``name`` in ``DicomModalities``."""
        return access.modality(self.config, name)

    def echo(self, modality: str) -> None:
        """C-ECHO a declared modality; raises :class:`DicomNetworkError` on failure."""
        scu.echo(self.ae, self.modality(modality))

    def find(
        self, modality: str, level: str, query: dict[str, Any], *, main_tags: bool = True
    ) -> list:
        """C-FIND a modality at ``level`` ("Patient", "Study", "Series", "Instance").

        ``query`` maps keywords (or tags) to DICOM matching patterns; the identifiers down
        to ``level`` and, with ``main_tags``, the level's main tags are requested as return
        keys too. Returns the answers as pydicom datasets.
        """
        return scu.find(self.ae, self.modality(modality), level, query, defaults=main_tags)

    def find_worklist(self, modality: str, identifier: Dataset) -> list[Dataset]:
        """Modality Worklist C-FIND a modality with ``identifier``; the matching items."""
        return scu.find_worklist(self.ae, self.modality(modality), identifier)

    def echo_undeclared(self, modality: access.Modality) -> None:
        """C-ECHO a node given by its address rather than declared (``/tools/dicom-echo``)."""
        scu.echo(self.ae, modality)

    def move(
        self,
        modality: str,
        query: dict[str, Any],
        target: str | None = None,
        *,
        level: str | None = None,
    ) -> scu.RetrieveResult:
        """C-MOVE the matches of ``query`` from a modality to ``target`` (default: us).

        The level is the deepest one whose unique key is in ``query`` unless given.
        """
        return scu.move(self.ae, self.modality(modality), query, target or self.aet, level=level)

    def get(
        self, modality: str, query: dict[str, Any], *, level: str | None = None
    ) -> scu.RetrieveResult:
        """C-GET the matches of ``query`` from a modality into the index."""
        return scu.get(self.ae, self.modality(modality), query, self.index, level=level)

    def store(self, modality: str, resources: list[str | Path], *,
              files: list[Path] | None = None, originator: tuple[str, int] | None = None,
              timeout: float | None = None, progress: Any = None) -> scu.StoreResult:  # fmt: skip
        """C-STORE resources (index IDs of any level, or file paths) to a modality.

        ``files``: their files when already resolved (:meth:`resolve_files`);
        ``originator``: (AE title, message ID) of the C-MOVE the stores serve; ``timeout``:
        seconds to wait for the modality at each step; ``progress(done, total)`` after each
        instance. With ``LogExportedResources``, each
        index resource of which something was sent is logged in ``/exports``.
        """
        declared = self.modality(modality)
        if files is None:
            files = self.resolve_files(resources)
        result = scu.store(self.ae, declared, files, originator=originator, timeout=timeout,
                           progress=progress)  # fmt: skip
        if result.sent and self.index is not None:  # the command line sends files alone
            ids = [str(r) for r in resources if not Path(str(r)).is_file()]
            self.index.log_exports(declared.name, [(self.index.level_of(i), i) for i in ids])
        return result

    def request_commitment(self, modality: str, instances: list[Instance]) -> str:
        """Ask a modality to commit to ``instances`` ((SOP Class UID, SOP Instance UID)
        pairs); the Transaction UID whose report :attr:`commitment_reports` will hold."""
        return request_commitment(
            self.ae, self.modality(modality), instances, self.commitment_reports
        )

    def sop_instances(self, resources: list[str]) -> list[Instance]:
        """(SOP Class UID, SOP Instance UID) of each instance of index resources."""
        pairs = []
        for resource in resources:
            for instance_id in self._instances_of(resource):
                tags = self.index.main_dicom_tags("Instance", instance_id)
                sop_class = self.index.instance_info(instance_id)["SopClassUid"]
                pairs.append((sop_class, tags["SOPInstanceUID"]))
        return pairs

    def resolve_files(self, resources: list[str | Path]) -> list[Path]:
        """Files of index resources of any level (patients, studies, series, instances)."""
        paths: list[Path] = []
        for resource in resources:
            if isinstance(resource, Path) or Path(str(resource)).is_file():
                paths.append(Path(resource))
                continue
            paths.extend(self.index.instance_path(i) for i in self._instances_of(str(resource)))
        return list(dict.fromkeys(paths))

    def _instances_of(self, resource_id: str) -> list[str]:
        for level in LEVELS:
            try:
                return list(self.index.instances_of(level, resource_id))
            except KeyError:
                continue
        raise KeyError(
            f"Unknown resource {resource_id!r}: not a patient, study, series or "
            "instance of the index"
        )


class _HandedServer(AssociationServer):
    """pynetdicom's association server without a socket of its own: it serves connections
    another process accepted and handed over (``process_request``), so it neither binds
    nor runs an accept loop."""

    def server_bind(self) -> None:
        self.socket.close()  # the unbound socket socketserver made

    def server_activate(self) -> None:
        pass

    def close(self, grace: float) -> None:
        """Let the associations in progress finish for ``grace`` seconds, then abort the
        rest and wait for their handlers (so nothing writes to the index after this)."""
        deadline = time.monotonic() + grace
        associations = self.active_associations
        for assoc in associations:
            assoc.join(max(0.0, deadline - time.monotonic()))
        for assoc in associations:
            if assoc.is_alive():
                assoc.abort()
                assoc.join(30)
