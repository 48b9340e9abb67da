"""Where the DICOMweb services are, as clients must be told it (Retrieve URLs, bulk data)."""

from __future__ import annotations

from fastapi import Request

#: The DICOMweb root under the REST API (Orthanc's DICOMweb plugin uses the same).
PREFIX = "/dicom-web"


def dicomweb_root(request: Request) -> str:
    """The absolute URL of ``/dicom-web`` as the client reached this server.

    Built from the ``Host`` header. dicomweb-client sends the host without the port, which
    would send clients of a server on another port than 80 to port 80 for every Retrieve URL
    and ``BulkDataURI``; the port the request arrived on is added then.
    """
    base = str(request.base_url).rstrip("/")
    host = request.headers.get("host", "")
    server = request.scope.get("server")
    if host and ":" not in host.rpartition("]")[2] and server and server[1] not in (80, 443):
        base = base.replace(f"//{host}", f"//{host}:{server[1]}", 1)
    return base + PREFIX


def warning(request: Request, text: str) -> str:
    """A ``Warning`` header value (RFC 7234 code 299, as PS3.18 uses it)."""
    agent = request.url.netloc or "workbench"
    quoted = text.replace("\\", "\\\\").replace('"', '\\"')
    return f'299 {agent} "{quoted}"'
