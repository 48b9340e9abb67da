"""Real peers the tests talk to: a throwaway Orthanc (with its DICOMweb plugin when asked),
and lookups for DCMTK tools.

The peers are real programs from Debian packages installed by ``scripts/bootstrap.sh``. When
one is missing the tests fail loudly, unless ``WORKBENCH_ALLOW_MISSING_PEERS=1`` asks for a
skip (handy on a laptop without root).
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests


def free_port() -> int:
    """Return a TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def require_tool(name: str) -> str:
    """Return the path of the program ``name``, or fail (skip if missing peers are allowed)."""
    path = shutil.which(name)
    if path:
        return path
    message = f"{name} is not installed; run scripts/bootstrap.sh (Debian dcmtk/orthanc/chromium)"
    if os.environ.get("WORKBENCH_ALLOW_MISSING_PEERS") == "1":
        pytest.skip(message)
    pytest.fail(message)


#: Where Debian's ``orthanc-dicomweb`` puts the plugin.
DICOMWEB_PLUGIN = Path("/usr/share/orthanc/plugins/libOrthancDicomWeb.so")


def require_plugin(path: Path) -> str:
    """Return the Orthanc plugin at ``path``, or fail (skip if missing peers are allowed)."""
    if path.is_file():
        return str(path)
    message = f"{path} is not installed; run scripts/bootstrap.sh (Debian orthanc-dicomweb)"
    if os.environ.get("WORKBENCH_ALLOW_MISSING_PEERS") == "1":
        pytest.skip(message)
    pytest.fail(message)


def require_ohif() -> Path:
    """Return the OHIF build the bootstrap fetched (npm ``@ohif/app``), or fail (skip if
    missing peers are allowed)."""
    from workbench.pacs.ohif import default_dist

    dist = default_dist()
    if (dist / "index.html").is_file():
        return dist
    message = f"no OHIF build in {dist}; run scripts/bootstrap.sh (npm @ohif/app)"
    if os.environ.get("WORKBENCH_ALLOW_MISSING_PEERS") == "1":
        pytest.skip(message)
    pytest.fail(message)


@dataclass
class OrthancPeer:
    """A running Orthanc started for the tests."""

    url: str
    dicom_port: int
    aet: str
    workdir: Path
    process: subprocess.Popen

    def get(self, path: str, **kwargs) -> requests.Response:
        return requests.get(self.url + path, timeout=30, **kwargs)

    def post(self, path: str, **kwargs) -> requests.Response:
        return requests.post(self.url + path, timeout=60, **kwargs)

    def put(self, path: str, **kwargs) -> requests.Response:
        return requests.put(self.url + path, timeout=30, **kwargs)

    def delete(self, path: str, **kwargs) -> requests.Response:
        return requests.delete(self.url + path, timeout=30, **kwargs)

    def upload(self, path: Path) -> dict:
        """POST one file to ``/instances`` and return Orthanc's answer."""
        response = self.post("/instances", data=Path(path).read_bytes())
        response.raise_for_status()
        return response.json()

    def add_dicomweb_server(self, name: str, url: str) -> None:
        """Make ``url`` (a DICOMweb root) the DICOMweb server ``name`` of the plugin, as an
        entry of its ``DicomWeb.Servers`` option would; Orthanc reaches it under
        ``/dicom-web/servers/{name}/...``."""
        self.put(f"/dicom-web/servers/{name}", json={"Url": url}).raise_for_status()

    def clear(self) -> None:
        """Delete every patient so a test starts from an empty Orthanc."""
        for patient in self.get("/patients").json():
            self.delete(f"/patients/{patient}")

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def start_orthanc(
    workdir: Path,
    *,
    aet: str = "ORTHANC",
    modalities: dict | None = None,
    dicomweb_servers: dict[str, str] | None = None,
    extra: dict | None = None,
) -> OrthancPeer:
    """Start a real Orthanc on free loopback ports with its storage under ``workdir``.

    With ``dicomweb_servers`` (names to DICOMweb root URLs, possibly none) its DICOMweb
    plugin runs: Orthanc's own DICOMweb server at ``/dicom-web/``, and a client of those
    servers.
    """
    binary = require_tool("Orthanc")
    plugins = []
    if dicomweb_servers is not None:
        plugins.append(require_plugin(DICOMWEB_PLUGIN))
    workdir.mkdir(parents=True, exist_ok=True)
    http_port, dicom_port = free_port(), free_port()
    config = {
        "Name": "test-orthanc",
        "StorageDirectory": str(workdir / "storage"),
        "IndexDirectory": str(workdir / "index"),
        "HttpPort": http_port,
        "DicomPort": dicom_port,
        "DicomAet": aet,
        "RemoteAccessAllowed": False,
        "AuthenticationEnabled": False,
        "HttpServerEnabled": True,
        "DicomServerEnabled": True,
        "DicomModalities": modalities or {},
        "DicomAlwaysAllowEcho": True,
        "DicomAlwaysAllowStore": True,
        "DicomCheckCalledAet": False,
        "UnknownSopClassAccepted": True,
        "StableAge": 1,
        "Plugins": plugins,
        "LoadPrivateDictionary": True,
        "DicomWeb": {"Enable": True, "Root": "/dicom-web/", "Servers": dicomweb_servers or {}},
    }
    config.update(extra or {})
    config_path = workdir / "orthanc.json"
    config_path.write_text(json.dumps(config, indent=2))
    log = open(workdir / "orthanc.log", "wb")  # noqa: SIM115 - closed with the process
    process = subprocess.Popen([binary, str(config_path)], stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{http_port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"Orthanc exited: {(workdir / 'orthanc.log').read_text()[-2000:]}")
        try:
            if requests.get(url + "/system", timeout=2).ok:
                return OrthancPeer(url, dicom_port, aet, workdir, process)
        except requests.ConnectionError:
            time.sleep(0.2)
    process.kill()
    raise RuntimeError("Orthanc did not answer on /system within 60 s")


def postgres_bindir() -> Path:
    """The folder of Debian's PostgreSQL server programs (``initdb``, ``pg_ctl``), or fail
    (skip if missing peers are allowed). Debian keeps them off PATH, per major version."""
    found = shutil.which("initdb")
    candidates = [Path(found).resolve().parent] if found else []
    candidates += sorted(
        Path("/usr/lib/postgresql").glob("*/bin"),
        key=lambda path: int(path.parent.name),
        reverse=True,
    )
    for folder in candidates:
        if (folder / "initdb").is_file() and (folder / "pg_ctl").is_file():
            return folder
    message = "PostgreSQL's initdb is not installed; run scripts/bootstrap.sh (Debian postgresql)"
    if os.environ.get("WORKBENCH_ALLOW_MISSING_PEERS") == "1":
        pytest.skip(message)
    pytest.fail(message)


@dataclass
class PostgresPeer:
    """A throwaway PostgreSQL cluster listening on a Unix socket in its own folder."""

    bindir: Path
    workdir: Path
    port: int
    #: The system user owning the cluster (PostgreSQL refuses to run as root).
    owner: str | None
    #: Whether PostgreSQL syncs its writes as it does by default (benchmarks), or not (tests).
    durable: bool = False
    created: int = 0

    @property
    def datadir(self) -> Path:
        return self.workdir / "data"

    def url(self, database: str = "postgres") -> str:
        """SQLAlchemy URL (psycopg 3) of ``database`` over the cluster's Unix socket."""
        return f"postgresql+psycopg://postgres@/{database}?host={self.workdir}&port={self.port}"

    def connect(self, database: str = "postgres"):
        """A psycopg connection in autocommit mode (as ``CREATE DATABASE`` needs)."""
        import psycopg

        return psycopg.connect(
            host=str(self.workdir),
            port=self.port,
            user="postgres",
            dbname=database,
            autocommit=True,
        )

    def new_database(self, locale: str | None = None) -> str:
        """Create an empty database (in the cluster's C.UTF-8 locale unless ``locale`` says
        otherwise) and return its SQLAlchemy URL."""
        self.created += 1
        name = f"index_{self.created}"
        options = f" TEMPLATE template0 LOCALE '{locale}'" if locale else ""
        with self.connect() as conn:
            conn.execute(f'CREATE DATABASE "{name}"{options}')
        return self.url(name)

    def pg_ctl(self, *args: str, timeout: float = 60) -> None:
        """Run ``pg_ctl`` on the cluster as its owner."""
        subprocess.run(
            [str(self.bindir / "pg_ctl"), "-D", str(self.datadir), *args],
            check=True,
            user=self.owner,
            capture_output=True,
            timeout=timeout,
        )

    def start(self) -> None:
        # Unix socket only, nothing on TCP. Durability is not what the tests are about (a
        # kill -9 of our server leaves PostgreSQL's own files alone), so they skip its fsyncs.
        options = f"-k {self.workdir} -p {self.port} -c listen_addresses='' -c max_connections=300"
        if not self.durable:
            options += " -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c jit=off"
        self.pg_ctl("start", "-w", "-l", str(self.workdir / "postgres.log"), "-o", options)

    def stop(self, mode: str = "fast") -> None:
        self.pg_ctl("stop", "-w", "-m", mode)

    def remove(self) -> None:
        """Stop the cluster (if it runs) and delete its files."""
        if (self.datadir / "postmaster.pid").exists():
            self.stop("immediate")
        shutil.rmtree(self.workdir, ignore_errors=True)


ORTHANC_POSTGRESQL_PLUGIN = Path("/usr/share/orthanc/plugins/libOrthancPostgreSQLIndex.so")


def orthanc_postgresql_index(postgres: PostgresPeer) -> dict:
    """Orthanc options putting its index in a new database of ``postgres`` (Debian
    ``orthanc-postgresql``; files stay in its storage directory): ``extra`` for
    :func:`start_orthanc`."""
    from sqlalchemy.engine import make_url

    database = make_url(postgres.new_database()).database
    return {
        "Plugins": [require_plugin(ORTHANC_POSTGRESQL_PLUGIN)],
        "PostgreSQL": {
            "EnableIndex": True,
            "EnableStorage": False,
            "Lock": False,
            "Host": str(postgres.workdir),
            "Port": postgres.port,
            "Database": database,
            "Username": "postgres",
            "Password": "",
        },
    }


def start_postgres(*, durable: bool = False) -> PostgresPeer:
    """Create and start a PostgreSQL cluster in a new temporary folder (``durable``: with
    PostgreSQL's default syncing of commits, for benchmarks).

    As root the cluster belongs to the ``postgres`` user Debian's package creates (``nobody``
    elsewhere), since PostgreSQL will not run as root; its folder is made outside pytest's
    temporary folders, which only root may enter.
    """
    import pwd
    import tempfile

    bindir = postgres_bindir()
    owner = None
    workdir = Path(tempfile.mkdtemp(prefix="workbench-postgres-"))
    if os.geteuid() == 0:
        try:
            account = pwd.getpwnam("postgres")
        except KeyError:
            account = pwd.getpwnam("nobody")
        owner = account.pw_name
        os.chown(workdir, account.pw_uid, account.pw_gid)
    peer = PostgresPeer(bindir, workdir, free_port(), owner, durable)
    # C.UTF-8: lower() folds every script's letters, as SQLite's workbench_lower does.
    subprocess.run(
        [
            str(bindir / "initdb"),
            "-D",
            str(peer.datadir),
            "-U",
            "postgres",
            "--auth=trust",
            "--encoding=UTF8",
            "--locale=C.UTF-8",
            "--no-sync",
        ],
        check=True,
        user=owner,
        capture_output=True,
        timeout=120,
    )
    try:
        peer.start()
    except subprocess.CalledProcessError as exc:
        log = workdir / "postgres.log"
        detail = log.read_text() if log.exists() else exc.stderr.decode(errors="replace")
        peer.remove()
        raise RuntimeError(f"PostgreSQL did not start: {detail[-2000:]}") from exc
    return peer
