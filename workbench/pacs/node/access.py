"""Who may talk to the node: known modalities and Orthanc's access options.

Access follows Orthanc's rules and option names so an ``orthanc.json`` carries over:

- ``DicomModalities`` lists the known peers, either as ``[AET, host, port]`` or as an object
  ``{"AET": ..., "Host": ..., "Port": ..., "AllowEcho": ..., "AllowFind": ...}``.
- ``DicomAlwaysAllowEcho`` / ``DicomAlwaysAllowStore`` (default true) let unknown peers
  verify and store; ``DicomAlwaysAllowFind`` / ``DicomAlwaysAllowMove`` /
  ``DicomAlwaysAllowGet`` (default false) do the same for queries and retrieves, which is why
  a peer must be declared before it can read from the node.
- ``DicomCheckModalityHost`` also requires the peer's address to match the declared host.
- ``DicomCheckCalledAet`` rejects associations not addressed to our own AE title.
"""

from __future__ import annotations

import socket
from dataclasses import dataclass
from typing import Any

from workbench.pacs.config import Config

#: The services a peer may use, as named in Orthanc's ``Allow*`` / ``DicomAlwaysAllow*``.
SERVICES = ("Echo", "Store", "Find", "Move", "Get")
#: What a declared modality may be allowed (``Allow*`` in its entry, default true): the
#: services, and storage commitment, which only declared modalities can use: requests
#: (N-ACTION) and reports (N-EVENT-REPORT). ``AllowStorageCommitment`` sets both, as in
#: Orthanc.
PERMISSIONS = (*SERVICES, "NAction", "EventReport")
# Where an option a configuration leaves out takes its value from: Config declares them.
_DEFAULTS = Config()


@dataclass(frozen=True)
class Modality:
    """A remote DICOM node declared in ``DicomModalities``."""

    name: str
    aet: str
    host: str
    port: int
    allow: dict[str, bool]

    def as_orthanc(self) -> dict[str, Any]:
        """The expanded form Orthanc's ``GET /modalities?expand`` shows."""
        return {
            "AET": self.aet,
            "Host": self.host,
            "Port": self.port,
            "Manufacturer": "Generic",
            **{f"Allow{service}": allowed for service, allowed in self.allow.items()},
            # Options of Orthanc's we do not vary per modality, at their defaults.
            "AllowFindWorklist": True,
            "AllowTranscoding": True,
            "LocalAet": "",
            "Timeout": 0,
            "UseDicomTls": False,
        }


def option(config: Config | dict[str, Any], name: str) -> Any:
    """An Orthanc-named option of a :class:`Config` or a plain dict of options.

    An option a dict leaves out has its :class:`Config` default.
    """
    if isinstance(config, dict) and name in config:
        return config[name]
    return getattr(_DEFAULTS if isinstance(config, dict) else config, name)


def parse_modality(name: str, value: Any) -> Modality:
    """Read one ``DicomModalities`` entry (list or object form).

    Raises
    ------
    ValueError
        If the entry is not ``[AET, host, port]`` nor an object with ``AET``/``Host``/``Port``.
    """
    allow = dict.fromkeys(PERMISSIONS, True)
    if isinstance(value, (list, tuple)) and len(value) >= 3:
        aet, host, port = value[0], value[1], value[2]
    elif isinstance(value, dict) and {"AET", "Port"} <= set(value):
        aet, host, port = value["AET"], value.get("Host", "127.0.0.1"), value["Port"]
        commitment = bool(value.get("AllowStorageCommitment", True))
        allow.update(NAction=commitment, EventReport=commitment)
        for service in PERMISSIONS:
            allow[service] = bool(value.get(f"Allow{service}", allow[service]))
    else:
        raise ValueError(
            f"DicomModalities entry {name!r} must be [AET, host, port] or an object with "
            f"AET, Host and Port; got {value!r}"
        )
    try:
        port = int(port)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"DicomModalities entry {name!r} has a non-numeric port {port!r}") from exc
    if not str(aet).strip() or len(str(aet)) > 16:
        raise ValueError(f"DicomModalities entry {name!r} has an invalid AE title {aet!r}")
    return Modality(name, str(aet).strip(), str(host), port, allow)


def modalities(config: Any) -> dict[str, Modality]:
    """All declared modalities by name."""
    entries = option(config, "DicomModalities") or {}
    return {name: parse_modality(name, value) for name, value in entries.items()}


def modality(config: Any, name: str) -> Modality:
    """The modality declared as ``name``.

    Raises
    ------
    KeyError
        If ``name`` is not declared in ``DicomModalities``.
    """
    known = modalities(config)
    if name not in known:
        declared = ", ".join(sorted(known)) or "none"
        raise KeyError(f"Unknown modality {name!r}; declared in DicomModalities: {declared}")
    return known[name]


def _same_host(declared: str, address: str) -> bool:
    if declared == address:
        return True
    try:
        return address in {info[4][0] for info in socket.getaddrinfo(declared, None)}
    except OSError:
        return False


def find_by_aet(config: Any, aet: str, address: str | None = None) -> Modality | None:
    """The declared modality using AE title ``aet`` (and ``address`` when hosts are checked)."""
    check_host = bool(option(config, "DicomCheckModalityHost"))
    for candidate in modalities(config).values():
        if candidate.aet != aet.strip():
            continue
        if check_host and address is not None and not _same_host(candidate.host, address):
            continue
        return candidate
    return None


def is_allowed(config: Any, service: str, calling_aet: str, address: str | None) -> bool:
    """Whether a peer calling as ``calling_aet`` from ``address`` may use ``service``."""
    if option(config, f"DicomAlwaysAllow{service}"):
        return True
    known = find_by_aet(config, calling_aet, address)
    return known is not None and known.allow.get(service, True)
