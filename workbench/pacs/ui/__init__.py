"""The PACS's own web page, served at ``/ui/``: browse, upload, act on studies.

Plain HTML, CSS and JavaScript modules in :data:`STATIC`, nothing fetched at run time. The
page talks only to the REST and DICOMweb routes of the same server, through URLs relative
to its own address, so it works as well at ``http://host:8042/ui/`` as behind a Jupyter
server's proxy (``/proxy/8042/ui/``). Routes: :mod:`workbench.pacs.rest.ui`.
"""

from __future__ import annotations

from pathlib import Path

#: The page's files.
STATIC = Path(__file__).parent / "static"
#: Where the page is served.
MOUNT = "/ui/"
