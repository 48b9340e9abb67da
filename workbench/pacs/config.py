"""Configuration of the index, REST server and DIMSE node, with Orthanc's option names.

A configuration is one JSON object. Where Orthanc has an option for the same thing we use
Orthanc's name and meaning, so an existing ``orthanc.json`` mostly carries over; options that
are ours (``DatabaseUrl``, ``BindAddress``) are marked as such below.

Example ``pacs.json`` (``workbench serve --config pacs.json``)::

    {
      "Name": "teaching-pacs",
      "StorageDirectory": "pacs-storage",
      "HttpPort": 8042,
      "DicomAet": "TEACHING",
      "DicomPort": 4242,
      "DicomModalities": {"ct-scanner": ["CT01", "10.0.0.12", 104]},
      "RemoteAccessAllowed": true,
      "RegisteredUsers": {"teacher": "a long passphrase"},
      "MaximumStorageSize": 20000,
      "MaximumPatientCount": 0,
      "OverwriteInstances": false
    }
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any


@dataclass
class Config:
    """Settings of one PACS instance (index + REST + DIMSE node).

    Attributes follow Orthanc's option names so that a user's ``orthanc.json`` is understood.
    Sizes are in MB and ``0`` means "no limit", as in Orthanc.
    """

    Name: str = "workbench"
    StorageDirectory: str = "workbench-storage"
    IndexDirectory: str | None = None
    #: Ours: SQLAlchemy URL of the index. Default: SQLite file in ``IndexDirectory``.
    DatabaseUrl: str | None = None
    HttpPort: int = 8042
    #: Ours: interface the REST server binds when remote access is off.
    BindAddress: str = "127.0.0.1"
    DicomAet: str = "WORKBENCH"
    DicomPort: int = 4242
    DicomModalities: dict[str, list[Any]] = field(default_factory=dict)
    #: As Orthanc: modalities live in the index's database instead of ``DicomModalities``
    #: (which is then set aside); those declared over REST outlive a restart.
    DicomModalitiesInDatabase: bool = False
    RemoteAccessAllowed: bool = False
    AuthenticationEnabled: bool = False
    RegisteredUsers: dict[str, str] = field(default_factory=dict)
    MaximumStorageSize: int = 0
    MaximumPatientCount: int = 0
    OverwriteInstances: bool = False
    StorageCompression: bool = False
    DicomCheckCalledAet: bool = False
    DicomAlwaysAllowEcho: bool = True
    DicomAlwaysAllowStore: bool = True
    DicomAlwaysAllowFind: bool = False
    DicomAlwaysAllowMove: bool = False
    DicomAlwaysAllowGet: bool = False
    DicomCheckModalityHost: bool = False
    #: Ours: processes serving DICOM associations. 1: the server's own; more: that many
    #: worker processes on the same index and storage, each association handed to the least
    #: busy (one process's threads share one interpreter lock, so concurrent associations
    #: need several to go faster). Python incoming filters then cannot see C-STOREs.
    DicomWorkerProcesses: int = 1
    #: Ours: helper processes reading the headers of small STOW-RS parts while the server's
    #: process receives and stores (0: none, all read in the server's process).
    StowHeaderProcesses: int = 1
    #: Seconds without new instances after which a series/study/patient is "stable".
    StableAge: int = 60
    #: Keep a log of the instances sent to modalities (``/exports``), as Orthanc's option.
    LogExportedResources: bool = False
    #: Jobs (``"Asynchronous": true``) run at once, and finished jobs kept (``/jobs``).
    ConcurrentJobs: int = 2
    JobsHistorySize: int = 10
    #: Modality worklists, as Orthanc's worklist plugin: ``{"Enable": true, "Database":
    #: "/folder/of/wl/files"}`` (``workbench.pacs.node.worklist``).
    Worklists: dict[str, Any] = field(default_factory=dict)
    #: Ours: the OHIF build (``dist/`` of the npm package ``@ohif/app``) served at ``/ohif/``.
    #: Default: the one ``scripts/bootstrap.sh`` fetched, if any (``workbench.pacs.ohif``).
    OhifDirectory: str | None = None

    @classmethod
    def load(cls, path: str | Path | None = None, **overrides: Any) -> Config:
        """Read a JSON configuration file and apply keyword overrides on top of it.

        Parameters
        ----------
        path : str or Path, optional
            JSON file with Orthanc-style options. Unknown options are kept out with a
            ``ValueError`` so a typo does not silently fall back to a default.
        **overrides
            Option values that win over the file (e.g. from CLI flags). ``None`` values are
            ignored so unset CLI flags do not erase file values.

        Raises
        ------
        ValueError
            If the file is not a JSON object or names an option we do not know.
        """
        values: dict[str, Any] = {}
        if path is not None:
            path = Path(path)
            try:
                loaded = json.loads(path.read_text(encoding="utf-8"))
            except json.JSONDecodeError as exc:
                raise ValueError(f"Configuration file {path} is not valid JSON: {exc}") from exc
            if not isinstance(loaded, dict):
                raise ValueError(f"Configuration file {path} must contain a JSON object")
            values.update(loaded)
        values.update({k: v for k, v in overrides.items() if v is not None})
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ValueError(
                f"Unknown configuration option(s) {', '.join(unknown)}; "
                f"known options are: {', '.join(sorted(known))}"
            )
        config = cls(**values)
        if config.StorageCompression:
            # Files stay as received so io, dask workers and DIMSE sends read them in place.
            raise ValueError(
                "StorageCompression is not supported: the store keeps DICOM files "
                "uncompressed so notebooks and dask workers can read them in place; "
                "set it to false (compressed transfer syntaxes are stored as received)"
            )
        return config

    @property
    def storage_path(self) -> Path:
        """Directory holding the DICOM files."""
        return Path(self.StorageDirectory).expanduser()

    @property
    def index_path(self) -> Path:
        """Directory holding the SQLite index (Orthanc's default: the storage directory)."""
        return Path(self.IndexDirectory or self.StorageDirectory).expanduser()

    @property
    def database_url(self) -> str:
        """SQLAlchemy URL of the index database."""
        if self.DatabaseUrl:
            return self.DatabaseUrl
        return f"sqlite:///{(self.index_path / 'index.sqlite').resolve()}"

    @property
    def http_host(self) -> str:
        """Address the REST server binds: all interfaces only when remote access is allowed."""
        return "0.0.0.0" if self.RemoteAccessAllowed else self.BindAddress

    def to_dict(self) -> dict[str, Any]:
        """The configuration as a JSON-ready dict."""
        return asdict(self)
