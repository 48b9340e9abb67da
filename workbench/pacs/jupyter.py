"""The PACS behind a Jupyter server: a ``jupyter-server-proxy`` launcher entry.

``jupyter-server-proxy`` reads the ``jupyter_serverproxy_servers`` entry points; ours
(:func:`server_proxy`) starts ``workbench serve`` on a port the proxy picks the first time
``/workbench-pacs/`` is opened, and the JupyterLab launcher gets a "Workbench PACS" tile
opening the web page. The page and the REST, DICOMweb and OHIF routes then live under the
Jupyter server's URL (``https://hub/user/me/workbench-pacs/ui/``), behind Jupyter's own
login. A server started in a notebook (``serve(HttpPort=8042)``) is reached the same way at
``/proxy/8042/ui/``.

Environment variables, read when the Jupyter server starts:

``WORKBENCH_PACS_CONFIG``
    A JSON configuration (Orthanc option names) for the launched server.
``WORKBENCH_PACS_STORAGE``
    Its ``StorageDirectory`` (default ``workbench-storage`` in the Jupyter server's folder).
"""

from __future__ import annotations

import os
import sys
from typing import Any

from .ui import STATIC

#: The URL path (under the Jupyter server's base URL) the launcher entry serves.
NAME = "workbench-pacs"


def server_command(environ: dict[str, str] | None = None) -> list[str]:
    """``workbench serve`` on the proxy's ``{port}``; DICOM on a free port unless configured.

    The Python running the Jupyter server runs the PACS too, so the launcher works in a
    virtual environment that is not on ``PATH``.
    """
    environ = os.environ if environ is None else environ
    command = [sys.executable, "-m", "workbench.cli", "serve", "--http-port", "{port}"]
    config = environ.get("WORKBENCH_PACS_CONFIG")
    if config:
        return [*command, "--config", config]
    storage = environ.get("WORKBENCH_PACS_STORAGE", "workbench-storage")
    # A fixed DICOM port (4242) would stop a second Jupyter server's PACS from starting.
    return [*command, "--storage", storage, "--dicom-port", "0"]


def server_proxy() -> dict[str, Any]:
    """The ``jupyter-server-proxy`` configuration of the PACS (entry point
    ``jupyter_serverproxy_servers``)."""
    return {
        "command": server_command(),
        "timeout": 60,
        "absolute_url": False,  # the PACS sees /ui/..., its pages use relative URLs
        "new_browser_tab": True,
        "launcher_entry": {
            "enabled": True,
            "title": "Workbench PACS",
            "path_info": f"{NAME}/ui/",
            "icon_path": str(STATIC / "icon.svg"),
        },
    }
