"""The OHIF viewer's prebuilt files, made to run under ``/ohif/`` against our DICOMweb root.

The npm package ``@ohif/app`` ships a production build in ``dist/``. ``scripts/bootstrap.sh``
unpacks it into a cache outside the repository (:func:`default_dist`); the ``OhifDirectory``
option points at another build. That build was made for the site root (``PUBLIC_URL=/``): its
page, chunk loader and style sheets name files as ``/app.bundle...``. :func:`rebased` moves
those references under :data:`MOUNT`, so the same files serve at ``/ohif/`` unchanged on disk.
:func:`app_config` writes the ``app-config.js`` that points OHIF at this server.
"""

from __future__ import annotations

import functools
import json
import os
import re
from collections.abc import Callable
from pathlib import Path

from .config import Config

#: The ``@ohif/app`` release the bootstrap fetches.
OHIF_VERSION = "3.13.2"
#: Where the viewer is served, and OHIF's router base name.
MOUNT = "/ohif/"
#: The DICOMweb services OHIF is pointed at (the paths of Orthanc's plugin).
DICOMWEB_ROOT = "/dicom-web"
WADO_URI_ROOT = "/wado"

#: How a root-built index page says where it lives.
_ROOT_PUBLIC_URL = 'window.PUBLIC_URL="/"'
#: Root-absolute references in a build made for the site root, by kind of file, each with
#: its replacement given the mount point.
_ROOT_REFERENCES: dict[str, list[tuple[re.Pattern[bytes], Callable[[bytes], bytes]]]] = {
    ".html": [
        (re.compile(rb'\b(href|src)="/(?!/)'), lambda mount: rb'\1="' + mount),
        (
            re.compile(re.escape(_ROOT_PUBLIC_URL.encode())),
            lambda mount: b'window.PUBLIC_URL="' + mount + b'"',
        ),
    ],
    # webpack's chunk loader: where lazily loaded bundles, workers and wasm are fetched from.
    ".js": [
        (
            re.compile(rb'__webpack_require__\.p = "/"'),
            lambda mount: b'__webpack_require__.p = "' + mount + b'"',
        )
    ],
    ".css": [(re.compile(rb"url\(/(?!/)"), lambda mount: b"url(" + mount)],
}


def default_dist() -> Path:
    """Where ``scripts/bootstrap.sh`` unpacks the OHIF build (``$WORKBENCH_CACHE`` if set)."""
    cache = (
        os.environ.get("WORKBENCH_CACHE")
        or Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "workbench"
    )
    return Path(cache) / f"ohif-{OHIF_VERSION}" / "dist"


def dist_folder(config: Config) -> Path | None:
    """The OHIF build to serve, or ``None`` when none is installed.

    Raises
    ------
    ValueError
        If ``OhifDirectory`` is set but holds no OHIF build.
    """
    if config.OhifDirectory:
        folder = Path(config.OhifDirectory).expanduser()
        if not (folder / "index.html").is_file():
            raise ValueError(
                f"OhifDirectory {folder} holds no OHIF build (no index.html); point it at the "
                "dist/ folder of the npm package @ohif/app"
            )
        return folder
    folder = default_dist()
    return folder if (folder / "index.html").is_file() else None


def is_root_build(dist: Path) -> bool:
    """Whether ``dist`` was built for the site root and so needs :func:`rebased`."""
    return _ROOT_PUBLIC_URL in (dist / "index.html").read_text(encoding="utf-8")


def needs_rebasing(path: Path) -> bool:
    """Whether ``path`` is a kind of file that can name other files by absolute path."""
    return path.suffix in _ROOT_REFERENCES


@functools.lru_cache(maxsize=64)
def rebased(path: Path, mtime_ns: int, mount: str = MOUNT) -> bytes:
    """The content of ``path`` with its root-absolute references moved under ``mount``
    (:data:`MOUNT`, or the same under the prefix a proxy serves this server at).

    Cached per file, modification time and mount (the bundles are several MB and change
    only when the build is replaced).
    """
    content = path.read_bytes()
    for pattern, replacement in _ROOT_REFERENCES[path.suffix]:
        content = pattern.sub(replacement(mount.encode()), content)
    return content


def app_config(name: str, prefix: str = "") -> str:
    """OHIF's ``app-config.js`` for this server: one DICOMweb data source, at ``/ohif``.

    The DICOMweb roots are absolute URLs made in the browser from the page's own origin, so
    the viewer works under whatever host name or port the server is reached by; ``prefix``
    is the path a proxy serves the server under (``/user/me/workbench-pacs``), if any.
    """
    source = {
        "friendlyName": name,
        "name": "workbench",
        "qidoRoot": prefix + DICOMWEB_ROOT,
        "wadoRoot": prefix + DICOMWEB_ROOT,
        "wadoUriRoot": prefix + WADO_URI_ROOT,
        "qidoSupportsIncludeField": True,
        "imageRendering": "wadors",
        "thumbnailRendering": "wadors",
        "enableStudyLazyLoad": True,
        "supportsFuzzyMatching": False,
        "supportsWildcard": True,
        "staticWado": False,
        "singlepart": "bulkdata,video,pdf",
        "bulkDataURI": {"enabled": True, "relativeResolution": "studies"},
        "omitQuotationForMultipartRequest": True,
        "dicomUploadEnabled": True,
    }
    config = {
        "routerBasename": prefix + MOUNT.rstrip("/"),
        "extensions": [],
        "modes": [],
        "customizationService": {},
        "showStudyList": True,
        "maxNumberOfWebWorkers": 2,
        "showWarningMessageForCrossOrigin": False,
        "showCPUFallbackMessage": True,
        "showLoadingIndicator": True,
        "strictZSpacingForVolumeViewport": True,
        "investigationalUseDialog": {"option": "never"},
        "defaultDataSourceName": "workbench",
        "dataSources": [
            {
                "namespace": "@ohif/extension-default.dataSourcesModule.dicomweb",
                "sourceName": "workbench",
                "configuration": source,
            }
        ],
    }
    return (
        "// Generated by workbench for this server's DICOMweb services.\n"
        f"window.config = {json.dumps(config, indent=2)};\n"
        "(function (source) {\n"
        "  const origin = window.location.origin;\n"
        "  for (const key of ['qidoRoot', 'wadoRoot', 'wadoUriRoot']) {\n"
        "    source[key] = origin + source[key];\n"
        "  }\n"
        "})(window.config.dataSources[0].configuration);\n"
    )


def viewer_path(study_instance_uid: str) -> str:
    """The path that opens one study in OHIF."""
    return f"{MOUNT}viewer?StudyInstanceUIDs={study_instance_uid}"
