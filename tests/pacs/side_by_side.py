"""Our server and the session's real Orthanc holding the same files, for route-by-route
comparisons."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import requests

from workbench.pacs import serve


def beside_orthanc(root: Path, orthanc, paths: list[Path]) -> Iterator[dict[str, str]]:
    """Yield ``{"ours": url, "orthanc": url}`` once both hold ``paths``; our server stops
    and Orthanc is emptied afterwards."""
    orthanc.clear()
    pacs = serve(StorageDirectory=str(root / "store"), HttpPort=0, DicomPort=0)
    try:
        for path in paths:
            orthanc.upload(path)
            answer = requests.post(pacs.url + "/instances", data=path.read_bytes(), timeout=60)
            answer.raise_for_status()
        yield {"ours": pacs.url, "orthanc": orthanc.url}
    finally:
        pacs.stop()
        orthanc.clear()
