"""DICOMweb (PS3.18) over the index: QIDO-RS, WADO-RS, STOW-RS under ``/dicom-web``, WADO-URI.

One module per service: :mod:`.qido` (search), :mod:`.wado` (retrieve, metadata, bulk data),
:mod:`.frames` (pixel data of frames), :mod:`.rendered` (rendered and thumbnail images),
:mod:`.stow` (uploads), and :mod:`.wado_uri` (the older WADO-URI at ``/wado``). Beside
them: :mod:`.targets` (the UIDs of a URL found in the index), :mod:`.jsonmodel` (the DICOM
JSON model of stored files) and :mod:`.multipart` (media types, ``multipart/related``
bodies). The routes share the REST API's application, and so its authentication (a
middleware in front of every route).

Each service declares its routes on a FastAPI router, which documents them (OpenAPI). The
requests themselves are dispatched by :func:`fast_routes`: plain Starlette routes calling the
same endpoints, placed before the REST API's hundreds of routes. FastAPI matches a request
against every route included before the one it takes, twice, and solves each endpoint's
parameters; that cost about 0.8 ms of each DICOMweb request, as much as a frame's own work.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

from fastapi import APIRouter
from fastapi.routing import APIRoute
from starlette.requests import Request
from starlette.routing import BaseRoute, Mount, Route

from . import frames, qido, rendered, stow, wado, wado_uri
from .urls import PREFIX

#: The routers of the services under :data:`PREFIX`, in the order their routes match.
_SERVICES = (qido, wado, frames, rendered, stow)

#: Every DICOMweb route, under :data:`PREFIX` (for the OpenAPI document).
router = APIRouter(prefix=PREFIX)
for _module in _SERVICES:
    router.include_router(_module.router)
#: WADO-URI, at ``/wado`` beside ``/dicom-web`` as in Orthanc.
uri_router = wado_uri.router


def _plain(endpoint: Callable[..., Any]) -> Callable[[Request], Any]:
    """A Starlette endpoint (the request alone) calling a DICOMweb endpoint, whose
    parameters are the path's (strings, as FastAPI passes them) and the request.

    The endpoint's kind is kept: Starlette runs a plain function in its thread pool and
    awaits a coroutine function, as FastAPI does.
    """
    if inspect.iscoroutinefunction(endpoint):

        async def call_async(request: Request) -> Any:
            return await endpoint(request=request, **request.path_params)

        return call_async

    def call(request: Request) -> Any:
        return endpoint(request=request, **request.path_params)

    return call


def _routes(routers: list[APIRouter]) -> list[Route]:
    routes = []
    for service_router in routers:
        for route in service_router.routes:
            if not isinstance(route, APIRoute):
                raise TypeError(f"DICOMweb route {route!r} is not a plain FastAPI route")
            routes.append(Route(route.path, _plain(route.endpoint), methods=list(route.methods)))
    return routes


def fast_routes() -> list[BaseRoute]:
    """The DICOMweb and WADO-URI routes as plain Starlette routes, to be matched first.

    Everything under :data:`PREFIX` is answered there (an unknown path is a 404, another
    method a 405, as before); the endpoints, and so the answers, are those of the routers.
    """
    return [
        Mount(PREFIX, routes=_routes([module.router for module in _SERVICES])),
        *_routes([uri_router]),
    ]


__all__ = ["PREFIX", "fast_routes", "router", "uri_router"]
