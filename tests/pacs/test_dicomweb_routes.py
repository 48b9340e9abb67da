"""How DICOMweb requests are dispatched: Starlette routes in front of the REST API's, the
same endpoints, the same answers for paths and methods that are not served."""

from __future__ import annotations

import requests
from starlette.routing import Mount, Route

from workbench.pacs.dicomweb import PREFIX, fast_routes


def test_every_documented_route_is_dispatched_in_front(live_server):
    documented = {
        (method.upper(), path)
        for path, operations in requests.get(f"{live_server}/openapi.json", timeout=30)
        .json()["paths"]
        .items()
        for method in operations
        if path.startswith((PREFIX + "/", "/wado"))
    }
    dispatched = set()
    for route in fast_routes():
        inner = route.routes if isinstance(route, Mount) else [route]
        prefix = route.path if isinstance(route, Mount) else ""
        for leaf in inner:
            assert isinstance(leaf, Route)
            path = prefix + leaf.path.replace(":path}", "}")  # OpenAPI names the parameter only
            dispatched |= {(m, path) for m in leaf.methods if m != "HEAD"}
    assert len(documented) >= 25  # search, retrieve, metadata, frames, images, STOW, WADO-URI
    assert dispatched == documented


def test_unknown_paths_and_methods_answer_as_the_rest_api(live_server):
    missing = requests.get(f"{live_server}{PREFIX}/nothing/here", timeout=30)
    assert missing.status_code == 404
    assert missing.json()["HttpStatus"] == 404
    wrong_method = requests.delete(f"{live_server}{PREFIX}/studies", timeout=30)
    assert wrong_method.status_code == 405
    assert wrong_method.json()["HttpStatus"] == 405
    # A REST route is still reached past the DICOMweb ones.
    assert requests.get(f"{live_server}/system", timeout=30).json()["ApiVersion"]
