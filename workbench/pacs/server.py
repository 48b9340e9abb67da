"""Run the index, the REST API (uvicorn) and the DIMSE node together.

:func:`serve` starts everything in background threads for notebooks and returns a handle;
``workbench serve`` runs the same in the foreground.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from typing import Any

import uvicorn

from .config import Config
from .header_helpers import HeaderHelpers
from .hooks import Hook, Hooks
from .incoming import IncomingFilter
from .index import Index
from .rest.app import create_app
from .rest.security import check_config

log = logging.getLogger(__name__)


@dataclass
class ServerHandle:
    """A running PACS: ``.url`` of the REST API, ``.index``, ``.node`` and ``.stop()``."""

    url: str
    index: Index
    node: Any
    config: Config
    _server: uvicorn.Server
    _thread: threading.Thread
    _hooks: Hooks | None = None
    #: The helper processes reading STOW-RS headers (started by ``workbench serve`` or by
    #: the first large upload).
    header_helpers: HeaderHelpers | None = None
    #: With ``DicomModalitiesInDatabase``: keeps the modalities equal to the database's.
    modalities_follower: Any = None

    def on(self, event: str, hook: Hook | None = None) -> Any:
        """Call ``hook(event)`` on each PACS event of that name, off the ingest path.

        Events: ``stored_instance``, ``new_series``, ``new_study``, ``new_patient``,
        ``stable_series``, ``stable_study``, ``stable_patient``, ``deleted``; the hook gets a
        :class:`~workbench.pacs.hooks.PacsEvent` (``.level``, ``.id``...). Without ``hook``,
        a decorator::

            @pacs.on("stable_study")
            def forward(event):
                pacs.node.store("archive", [event.id])
        """
        if hook is None:
            return lambda function: self.on(event, function)
        if self._hooks is None:
            self._hooks = Hooks(self.index)
        return self._hooks.on(event, hook)

    def filter_incoming(self, incoming_filter: IncomingFilter | None) -> Any:
        """Admit or refuse each instance before it is stored, whichever way it comes.

        ``incoming_filter(instance)`` gets an :class:`~workbench.pacs.incoming.IncomingInstance`
        and refuses it by returning ``False`` or raising
        :class:`~workbench.pacs.incoming.Refused` (with a DIMSE status of its choice); ``None``
        removes the filter. Returns the filter, so it also works as a decorator.

        Raises
        ------
        ValueError
            With ``DicomWorkerProcesses`` > 1: C-STOREs are then received by other
            processes, which a Python function of this one cannot vet.
        """
        if incoming_filter is not None and self.node is not None and self.node.workers:
            raise ValueError(
                "An incoming filter cannot vet C-STOREs received by DICOM worker processes "
                f"(DicomWorkerProcesses={self.config.DicomWorkerProcesses}); "
                "set DicomWorkerProcesses to 1 to filter them"
            )
        self.index.incoming_filter = incoming_filter
        return incoming_filter

    def off(self, event: str, hook: Hook) -> None:
        """Stop calling ``hook`` on ``event``."""
        if self._hooks is not None:
            self._hooks.off(event, hook)

    def stop(self, timeout: float = 10.0, *, grace: float = 5.0) -> None:
        """Stop the REST server, the node and the hooks, then release the index; DICOM
        worker processes give their associations in progress ``grace`` seconds to end."""
        self._server.should_exit = True
        self._thread.join(timeout)
        if self.modalities_follower is not None:
            self.modalities_follower.stop(timeout)
        if self.header_helpers is not None:
            self.header_helpers.close()
        if self.node is not None:
            self.node.stop(grace)
        if self._hooks is not None:
            self._hooks.stop(timeout)
        self.index.close()

    def __enter__(self) -> ServerHandle:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def __repr__(self) -> str:
        node = f", dicom={self.config.DicomAet}@{self.node.port}" if self.node else ""
        return f"ServerHandle(url={self.url!r}{node})"


def start_node(index: Index, config: Config) -> Any:
    """Start the DIMSE node on ``config.DicomPort`` and return it."""
    from .node import DicomNode

    node = DicomNode(index, config)
    node.start()
    return node


def serve(
    config: Config | None = None,
    *,
    dicom: bool = True,
    log_level: str = "warning",
    **overrides: Any,
) -> ServerHandle:
    """Start index + REST API (+ DIMSE node) in background threads.

    Parameters
    ----------
    config : Config, optional
        Settings; ``overrides`` (Orthanc option names) are applied on top. ``HttpPort=0``
        picks a free port.
    dicom : bool
        Also run the DIMSE node.
    log_level : str
        uvicorn's log level.

    Returns
    -------
    ServerHandle
        Call ``.stop()`` (or use it as a context manager) to shut everything down.

    Raises
    ------
    ValueError
        If remote access or authentication is requested without ``RegisteredUsers``.

    Examples
    --------
    >>> from workbench.pacs import serve
    >>> pacs = serve(StorageDirectory="pacs-storage", HttpPort=0)    # doctest: +SKIP
    >>> pacs.url                                                      # doctest: +SKIP
    'http://127.0.0.1:39251'
    >>> pacs.stop()                                                   # doctest: +SKIP
    """
    config = _with_overrides(config, overrides)
    check_config(config)
    index = Index(config)
    try:
        node = start_node(index, config) if dicom else None
    except BaseException:
        index.close()
        raise
    try:
        app = create_app(index, node=node, config=config)
        server, thread, port = _start_rest(app, config, log_level)
    except BaseException:
        if node is not None:
            node.stop()
        index.close()
        raise
    host = "127.0.0.1" if config.http_host in ("0.0.0.0", "::") else config.http_host
    handle = ServerHandle(
        f"http://{host}:{port}",
        index,
        node,
        config,
        server,
        thread,
        header_helpers=app.state.header_helpers,
    )
    if node is not None:
        _delete_worklists_when_done(handle)
    # Modalities declared through another server on the same database reach this one.
    handle.modalities_follower = app.state.modalities_follower
    if handle.modalities_follower is not None:
        handle.modalities_follower.start()
    return handle


def _delete_worklists_when_done(handle: ServerHandle) -> None:
    """With ``Worklists: {"DeleteWorklistsOnStableStudy": true}`` (the default, as Orthanc's
    plugin), the worklist items of a study go once the study has arrived and is stable."""
    from .node.worklist import worklist_folder, worklists_of_study

    folder = worklist_folder(handle.config)
    if folder is None or not handle.config.Worklists.get("DeleteWorklistsOnStableStudy", True):
        return

    def delete(event) -> None:
        study_uid = handle.index.main_dicom_tags("Study", event.id).get("StudyInstanceUID")
        for path in worklists_of_study(folder, study_uid or ""):
            path.unlink(missing_ok=True)

    handle.on("stable_study", delete)


def _with_overrides(config: Config | None, overrides: dict[str, Any]) -> Config:
    if config is None:
        return Config.load(**overrides)
    if overrides:
        return Config.load(**{**config.to_dict(), **overrides})
    return config


def _start_rest(
    app: Any, config: Config, log_level: str
) -> tuple[uvicorn.Server, threading.Thread, int]:
    server = uvicorn.Server(
        uvicorn.Config(
            app, host=config.http_host, port=config.HttpPort, log_level=log_level, access_log=False
        )
    )
    # A notebook's thread cannot take over signal handling.
    server.install_signal_handlers = lambda: None  # type: ignore[method-assign]
    thread = threading.Thread(target=server.run, name="workbench-rest", daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if not thread.is_alive():
            raise RuntimeError(
                f"The REST server could not start on {config.http_host}:{config.HttpPort} "
                "(port in use?)"
            )
        if time.monotonic() > deadline:
            server.should_exit = True
            raise RuntimeError("The REST server did not start within 30 s")
        time.sleep(0.02)
    port = server.servers[0].sockets[0].getsockname()[1]
    return server, thread, port
