"""The app factory: wires the routers, error handlers and authentication together."""

from __future__ import annotations

import importlib
from typing import Any

from fastapi import FastAPI

from workbench import __version__

from .. import dicomweb
from ..config import Config
from ..header_helpers import HeaderHelpers
from ..index import Index
from ..jobs import Jobs
from ..ohif import dist_folder
from . import (
    attachments,
    bulk,
    creation,
    instances,
    jobs,
    labels,
    metadata,
    modify,
    pixels,
    resources,
    restructure,
    system,
    tagviews,
    tools,
    ui,
)
from .errors import install_error_handlers
from .http import OrthancHttpMiddleware
from .security import BasicAuthMiddleware, auth_required, check_config

#: Routers of the DIMSE node, mounted when a node is given.
NODE_ROUTERS = ("modalities", "queries", "commitment", "worklists")


def _modalities_follower(index: Index, node: Any, config: Config) -> Any:
    """With ``DicomModalitiesInDatabase``: what keeps the modalities in use equal to the
    database's (read by the ``/modalities`` routes; :func:`.server.serve` also starts its
    thread, which reads them every few seconds)."""
    if not config.DicomModalitiesInDatabase:
        return None
    from ..node.shared_modalities import ModalitiesFollower

    return ModalitiesFollower(index, config, node.modalities_changed if node else lambda: None)


def create_app(index: Index, node: Any = None, config: Config | None = None) -> FastAPI:
    """Build the REST application over ``index`` (and ``node`` when the DIMSE node runs).

    Parameters
    ----------
    index : Index
        The store served.
    node : DicomNode, optional
        Enables ``/modalities`` and ``/queries``.
    config : Config, optional
        Defaults to ``index.config``. With remote access or authentication enabled, every
        route (OpenAPI documents and the web page at ``/ui/`` included) requires HTTP
        basic auth. The OHIF viewer is
        served at ``/ohif/`` when a build is installed (``OhifDirectory``,
        :mod:`workbench.pacs.ohif`).

    Raises
    ------
    ValueError
        If authentication is required but no user is registered, or ``OhifDirectory``
        holds no OHIF build.
    """
    config = config or index.config
    check_config(config)
    app = FastAPI(
        title=f"{config.Name} (workbench PACS)",
        version=__version__,
        description="Orthanc-compatible REST API of the workbench index.",
    )
    app.state.index = index
    app.state.jobs = Jobs(config.ConcurrentJobs, config.JobsHistorySize)
    app.state.node = node
    app.state.config = config
    app.state.header_helpers = HeaderHelpers(config.StowHeaderProcesses)
    app.state.modalities_follower = _modalities_follower(index, node, config)
    install_error_handlers(app)
    app.include_router(ui.router)
    app.include_router(system.router)
    app.include_router(tools.router)
    app.include_router(creation.router)
    app.include_router(restructure.router)
    app.include_router(bulk.router)
    app.include_router(jobs.router)
    # Instance-only routes first so /instances/{id}/file etc. are not shadowed.
    app.include_router(instances.router)
    app.include_router(pixels.router)
    app.include_router(pixels.series_router)
    for router in [
        *resources.ROUTERS,
        *tagviews.ROUTERS,
        *labels.ROUTERS,
        *metadata.ROUTERS,
        *attachments.ROUTERS,
        *modify.ROUTERS,
    ]:
        app.include_router(router)
    app.include_router(dicomweb.router)  # documented here, dispatched by the fast routes
    app.include_router(dicomweb.uri_router)
    app.router.routes[:0] = dicomweb.fast_routes()
    if node is not None:
        # The DIMSE node's routers (/modalities, /queries) join here.
        for name in NODE_ROUTERS:
            try:
                module = importlib.import_module(f"{__package__}.{name}")
            except ModuleNotFoundError as exc:
                if exc.name != f"{__package__}.{name}":
                    raise
                continue
            for router in getattr(module, "ROUTERS", (module.router,)):
                app.include_router(router)
    ohif_dist = dist_folder(config)
    app.state.ohif = ohif_dist is not None  # the web page links studies to it
    if ohif_dist is not None:
        from .ohif import ohif_router

        app.include_router(ohif_router(ohif_dist))
    if auth_required(config):
        app.add_middleware(BasicAuthMiddleware, users=config.RegisteredUsers, realm=config.Name)
    app.add_middleware(OrthancHttpMiddleware)  # outermost: paths as Orthanc reads them
    return app
