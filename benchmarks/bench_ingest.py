"""C-STORE ingest throughput of the node next to Orthanc, pynetdicom's storescp and DCMTK's;
bulk import next to Orthanc's REST upload.

One run generates 600 CT 512x512 instances (3 series) and 2,000 small 64x64 instances from
real headers in ../shared/data, then pushes each set with DCMTK ``storescu`` over one
association into each receiver, every time with fresh storage, repeated and interleaved;
medians are printed as instances/s and MB/s with our ratios. Our node acknowledges an instance
only once it is fsynced and indexed; DCMTK's storescp just writes files (the practical limit).
A last receiver runs our node's pynetdicom setup with a C-STORE handler that stores nothing:
the ceiling of any node built on pynetdicom on this machine. With ``--postgresql``, our node
and Orthanc (Debian ``orthanc-postgresql`` index plugin) also run with their index in a
PostgreSQL started for the run (default durability, files still on disk), a new database each
time, and our figures on PostgreSQL are compared with Orthanc's on PostgreSQL too.

Then the same sets over ``--associations`` (8) concurrent associations, each ``storescu``
sending its share: into our node and Orthanc on SQLite, our node with ``--workers`` (2)
DICOM worker processes (``--dicom-workers``: the server process accepts, each worker serves
the associations handed to it), and with ``--postgresql`` the same on PostgreSQL, plus two
of our nodes sharing one PostgreSQL database and one storage directory (the associations
spread over both).

Then what making each received file durable costs alone (the store's link and fsyncs, no
network, no header, no rows), one file after the other, next to the same links unsynced;
with the one-association run, next to what storing costs our node beyond the pynetdicom
ceiling and what 0.8x that ceiling would leave for it.

Then bulk import (``--skip-bulk`` leaves it out): ``workbench import`` of both sets (a new
process, fresh storage) and a ZIP of them uploaded to our ``POST /instances``, next to
Orthanc's REST upload of the same files one ``POST /instances`` each, and of the same ZIP.

Then C-FIND study latency (one association per query, as a viewer does) on an index of
``--studies`` studies in our node and in Orthanc fed the same studies.

``TCP_NODELAY=1`` is exported for the DCMTK tools and Orthanc: DCMTK 3.6.7 otherwise leaves
Nagle's algorithm on, which makes every receiver several times slower. ``--as-installed``
adds a short run without it (``storescu`` and Orthanc as a user starts them), one
association, the first :data:`AS_INSTALLED_FILES` files of each set.

Usage::

    .venv/bin/python benchmarks/bench_ingest.py [--repeat 3] [--studies 10000] [--quick]
                                                [--skip-ingest] [--skip-find] [--skip-bulk]
                                                [--postgresql] [--associations 8]
                                                [--workers 2] [--as-installed]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import zipfile
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import pydicom  # noqa: E402
import requests  # noqa: E402
from pydicom.uid import generate_uid  # noqa: E402

from tests.peers import (  # noqa: E402
    PostgresPeer,
    free_port,
    orthanc_postgresql_index,
    start_orthanc,
    start_postgres,
)

SHARED = REPO.parent / "shared" / "data"
CT_TEMPLATE = SHARED / "series_ct_philips_ingenuity_5mm" / "I10"
SMALL_TEMPLATE = SHARED / "nema_mr1_small_transcodes" / "MR_small.dcm"
os.environ["TCP_NODELAY"] = "1"  # inherited by storescu, storescp and Orthanc
#: Files of each set sent by the ``--as-installed`` run (Orthanc takes ~90 ms each there).
AS_INSTALLED_FILES = 200


def generate(template: Path, out: Path, count: int, series: int, tag: str) -> list[Path]:
    """``count`` copies of a real instance with new UIDs, in ``series`` series of one study."""
    out.mkdir(parents=True)
    ds = pydicom.dcmread(template)
    study = generate_uid()
    series_uids = [generate_uid() for _ in range(series)]
    ds.PatientID, ds.PatientName, ds.StudyInstanceUID = f"BENCH-{tag}", f"BENCH^{tag}", study
    paths = []
    for number in range(count):
        ds.SeriesInstanceUID = series_uids[number % series]
        ds.SOPInstanceUID = generate_uid()
        ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
        ds.InstanceNumber = number // series + 1
        path = out / f"{number:05d}.dcm"
        ds.save_as(path, enforce_file_format=True)
        paths.append(path)
    return paths


def wait_for_echo(aet: str, port: int, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if (
            subprocess.run(
                ["echoscu", "-aec", aet, "127.0.0.1", str(port)], capture_output=True
            ).returncode
            == 0
        ):
            return
        time.sleep(0.1)
    raise RuntimeError(f"{aet} on port {port} did not answer C-ECHO")


class Receiver:
    name = ""
    aet = ""

    def start(self, workdir: Path) -> int:
        """Start with fresh storage under ``workdir``; return the DICOM port."""
        raise NotImplementedError

    def ports(self, workdir: Path) -> list[int]:
        """Start; return every DICOM port associations may be spread over."""
        return [self.start(workdir)]

    def stop(self) -> None:
        raise NotImplementedError

    def spread(self, count: int) -> str:
        """What the last run's processes used for its ``count`` instances, where known."""
        return ""


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds a live process has used so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def child_pids(pid: int) -> list[int]:
    children = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            children += (task / "children").read_text().split()
        except FileNotFoundError:  # a thread that ended meanwhile
            continue
    return sorted(map(int, children))


def _command_line(pid: int) -> bytes:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes()
    except (FileNotFoundError, ProcessLookupError):  # it ended meanwhile
        return b""


class ProcessReceiver(Receiver):
    """A receiver run as a child process on a free port until :meth:`stop`."""

    def command(self, port: int, workdir: Path) -> list[str]:
        raise NotImplementedError

    def start(self, workdir: Path) -> int:
        port = free_port()
        workdir.mkdir(parents=True, exist_ok=True)
        self.process = subprocess.Popen(
            self.command(port, workdir),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            cwd=REPO,
        )
        wait_for_echo(self.aet, port)
        return port

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=30)


class Ours(ProcessReceiver):
    name, aet = "workbench node", "WORKBENCH"

    def __init__(
        self,
        modalities: dict | None = None,
        postgres: PostgresPeer | None = None,
        database_url: str | None = None,
        workers: int = 1,
    ):
        self.modalities = modalities or {}
        self.postgres = postgres
        self.database_url = database_url  # a database shared with another node
        self.workers = workers
        self.cpu: list[float] = []
        if postgres:
            self.name = "workbench node (PostgreSQL)"
        if workers > 1:
            self.name = self.name.replace("node", f"node, {workers} workers")

    def command(self, port: int, workdir: Path) -> list[str]:
        config = workdir.parent / f"{workdir.name}-{port}.json"
        options: dict = {"DicomModalities": self.modalities}
        if self.database_url:
            options["DatabaseUrl"] = self.database_url
        elif self.postgres:
            options["DatabaseUrl"] = self.postgres.new_database()
        config.write_text(json.dumps(options))
        self.http_port = free_port()
        return [
            sys.executable,
            "-m",
            "workbench.cli",
            "serve",
            "--config",
            str(config),
            "--storage",
            str(workdir),
            "--http-port",
            str(self.http_port),
            "--dicom-port",
            str(port),
            "--aet",
            self.aet,
            "--dicom-workers",
            str(self.workers),
        ]

    def start(self, workdir: Path) -> int:
        port = super().start(workdir)
        self.cpu = self._cpu()
        return port

    def _cpu(self) -> list[float]:
        """CPU seconds used so far by the server process and each DICOM worker process (not
        the STOW-RS header helper, idle here, which may start after the port opens)."""
        workers = [pid for pid in child_pids(self.process.pid)
                   if b"workbench.pacs.node.worker" in _command_line(pid)]  # fmt: skip
        return [cpu_seconds(pid) for pid in [self.process.pid, *workers]]

    def stop(self) -> None:
        # What the run used, start-up left out (a worker restarted meanwhile would show).
        self.cpu = [after - before for after, before in zip(self._cpu(), self.cpu, strict=True)]
        super().stop()

    def spread(self, count: int) -> str:
        workers = " / ".join(f"{seconds:.1f}" for seconds in self.cpu[1:])
        return (
            f"  CPU s: server {self.cpu[0]:.1f}"
            + (f", workers {workers}" if workers else "")
            + f" ({sum(self.cpu) / count * 1000:.1f} ms per instance)"
        )


class TwoNodes(Receiver):
    """Two of our nodes (two ``workbench serve`` processes) on one PostgreSQL database and one
    storage directory, as Orthanc allows several servers on one database."""

    name, aet = "2 workbench nodes, 1 PostgreSQL", "WORKBENCH"

    def __init__(self, postgres: PostgresPeer):
        self.postgres = postgres

    def ports(self, workdir: Path) -> list[int]:
        url = self.postgres.new_database()
        self.nodes = [Ours(postgres=self.postgres, database_url=url) for _ in range(2)]
        return [node.start(workdir) for node in self.nodes]

    def start(self, workdir: Path) -> int:
        return self.ports(workdir)[0]

    def stop(self) -> None:
        for node in self.nodes:
            node.stop()


class OrthancReceiver(Receiver):
    name, aet = "Orthanc 1.10 (SQLite)", "ORTHANC"

    def __init__(self, modalities: dict | None = None, postgres: PostgresPeer | None = None):
        self.modalities = modalities or {}
        self.postgres = postgres
        if postgres:
            self.name = "Orthanc 1.10 (PostgreSQL)"

    def start(self, workdir: Path) -> int:
        extra = orthanc_postgresql_index(self.postgres) if self.postgres else None
        self.peer = start_orthanc(workdir, aet=self.aet, modalities=self.modalities, extra=extra)
        return self.peer.dicom_port

    def stop(self) -> None:
        self.peer.stop()


class PynetdicomStorescp(ProcessReceiver):
    name, aet = "pynetdicom storescp", "STORESCP"

    def command(self, port: int, workdir: Path) -> list[str]:
        return [
            sys.executable,
            "-m",
            "pynetdicom",
            "storescp",
            str(port),
            "-aet",
            self.aet,
            "-od",
            str(workdir),
        ]


class ProtocolOnly(ProcessReceiver):
    """Our node's pynetdicom setup (same contexts, same association tuning) answering every
    C-STORE at once without storing or indexing anything: the most any node built on
    pynetdicom here could reach, so the rest of our figure is what storing costs. With
    ``processes`` > 1, that many such processes on one port (``SO_REUSEPORT``: the kernel
    spreads the associations), the ceiling of worker processes."""

    name, aet = "our pynetdicom setup, no storage", "PROTOCOL"

    def __init__(self, processes: int = 1):
        self.processes = processes
        if processes > 1:
            self.name = f"our setup, no storage, {processes} processes"

    def command(self, port: int, workdir: Path) -> list[str]:
        return [
            sys.executable,
            __file__,
            "--protocol-only-scp",
            str(port),
            self.aet,
            str(self.processes),
        ]


def serve_protocol_only(port: int, aet: str, processes: int = 1) -> None:
    """Run :class:`ProtocolOnly`'s SCP in this process (and ``processes - 1`` forked
    children, each with its own socket on the port) until terminated."""
    import signal
    import socket

    from pynetdicom import evt
    from pynetdicom.transport import AssociationServer

    from workbench.pacs import Config
    from workbench.pacs.node import DicomNode
    from workbench.pacs.node.contexts import quickly_copied, tune_association

    children = []
    for _ in range(processes - 1):
        child = os.fork()
        if child == 0:
            children = []
            break
        children.append(child)

    def leave(*_args) -> None:
        for child in children:
            os.kill(child, signal.SIGTERM)
        os._exit(0)

    signal.signal(signal.SIGTERM, leave)

    class Shared(AssociationServer):
        def server_bind(self) -> None:
            self.socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
            super().server_bind()

    node = DicomNode(None, Config(DicomAet=aet))
    handlers = [
        (evt.EVT_CONN_OPEN, tune_association),
        (evt.EVT_C_ECHO, lambda event: 0),
        (evt.EVT_C_STORE, lambda event: 0),
    ]
    node.ae.make_server(
        ("127.0.0.1", port),
        evt_handlers=handlers,
        server_class=Shared,
        contexts=quickly_copied(node.ae.supported_contexts),
    ).serve_forever()


class DcmtkStorescp(ProcessReceiver):
    name, aet = "DCMTK storescp (files only)", "STORESCP"

    def command(self, port: int, workdir: Path) -> list[str]:
        return ["storescp", "-aet", self.aet, "-od", str(workdir), str(port)]


def push(receiver: Receiver, shares: list[Path], scratch: Path) -> float:
    """Seconds ``storescu`` needs to send every file of ``shares``, one association per
    directory at once, spread over the receiver's ports."""
    workdir = Path(tempfile.mkdtemp(dir=scratch))
    ports = receiver.ports(workdir)
    try:
        started = time.perf_counter()
        senders = [
            subprocess.Popen(
                [
                    "storescu",
                    "-aec",
                    receiver.aet,
                    "+sd",
                    "127.0.0.1",
                    str(ports[number % len(ports)]),
                    str(share),
                ],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
                text=True,
            )
            for number, share in enumerate(shares)
        ]
        failures = [sender.communicate()[1] for sender in senders]
        elapsed = time.perf_counter() - started
        for sender, stderr in zip(senders, failures, strict=True):
            if sender.returncode != 0:
                raise RuntimeError(f"storescu to {receiver.name} failed: {stderr[-1000:]}")
        return elapsed
    finally:
        receiver.stop()
        shutil.rmtree(workdir, ignore_errors=True)


@dataclass
class Dataset_:
    name: str
    directory: Path
    count: int
    megabytes: float

    def shares(self, associations: int) -> list[Path]:
        """The files split into ``associations`` directories (hard links), one per sender."""
        if associations == 1:
            return [self.directory]
        root = self.directory.with_name(f"{self.directory.name}-{associations}")
        if not root.exists():
            files = sorted(self.directory.iterdir())
            for number in range(associations):
                share = root / str(number)
                share.mkdir(parents=True)
                for path in files[number::associations]:
                    os.link(path, share / path.name)
        return sorted(root.iterdir())


def _load() -> str:
    """The machine's 1-minute load average and cores: the figures are only comparable at
    similar load, receivers being measured interleaved for that reason."""
    return f"{os.getloadavg()[0]:.2f} on {os.cpu_count()} cores"


def make_sets(scratch: Path, quick: bool) -> list[Dataset_]:
    scale = 0.25 if quick else 1.0
    sets = []
    for name, template, count, series in (
        ("CT 512²", CT_TEMPLATE, int(600 * scale), 3),
        ("small 64²", SMALL_TEMPLATE, int(2000 * scale), 4),
    ):
        directory = scratch / name.split()[0]
        files = generate(template, directory, count, series, name.split()[0])
        megabytes = sum(path.stat().st_size for path in files) / 1e6
        sets.append(Dataset_(name, directory, count, megabytes))
    return sets


def bench_ingest(
    repeat: int,
    scratch: Path,
    sets: list[Dataset_],
    associations: int,
    postgres: PostgresPeer | None = None,
    workers: int = 2,
    single: bool = True,
) -> dict[tuple[str, str], float]:
    """Run and print both ingest tables; the one-association rates (instances/s) by
    ``(receiver name, set name)``."""
    one_association: dict[tuple[str, str], float] = {}
    ours = [Ours()] + ([Ours(postgres=postgres)] if postgres else [])
    pooled = [Ours(workers=workers)] + ([Ours(postgres=postgres, workers=workers)]
                                        if postgres else [])  # fmt: skip
    orthancs = [OrthancReceiver()] + ([OrthancReceiver(postgres=postgres)] if postgres else [])
    one = [*ours, *orthancs, PynetdicomStorescp(), ProtocolOnly(), DcmtkStorescp()]
    many = [
        *ours,
        *(pooled if workers > 1 else []),
        *([TwoNodes(postgres)] if postgres else []),
        *orthancs,
        ProtocolOnly(),
        *([ProtocolOnly(workers)] if workers > 1 else []),
    ]
    runs = [*([(1, one)] if single else []), *([(associations, many)] if associations else [])]
    for count, receivers in runs:
        timings: dict[tuple[str, str], list[float]] = {}
        for round_ in range(repeat):
            for data in sets:
                for receiver in receivers:  # interleaved so drifts of the machine hit all alike
                    seconds = push(receiver, data.shares(count), scratch)
                    timings.setdefault((receiver.name, data.name), []).append(seconds)
                    print(
                        f"  round {round_ + 1}, {count} association(s): {data.name:9} -> "
                        f"{receiver.name:32} {data.count / seconds:7.1f} inst/s  "
                        f"(load {_load()}){receiver.spread(data.count)}",
                        flush=True,
                    )
        medians = {key: statistics.median(values) for key, values in timings.items()}
        if count == 1:
            counts = {data.name: data.count for data in sets}
            one_association = {key: counts[key[1]] / seconds for key, seconds in medians.items()}
        print(
            f"\nC-STORE with storescu over {count} association(s) at once, median of "
            f"{repeat} run(s); load average {_load()}"
        )
        print(f"{'receiver':34}" + "".join(f"{d.name + ' inst/s':>18}{'MB/s':>8}" for d in sets))
        for receiver in receivers:
            row = f"{receiver.name:34}"
            for data in sets:
                seconds = medians[(receiver.name, data.name)]
                row += f"{data.count / seconds:18.1f}{data.megabytes / seconds:8.1f}"
            print(row)
        mine = [receiver for receiver in receivers
                if isinstance(receiver, (Ours, TwoNodes))]  # fmt: skip
        for own in mine:
            for other in receivers:
                if other in mine:
                    continue
                ratios = [medians[(other.name, d.name)] / medians[(own.name, d.name)]
                          for d in sets]  # fmt: skip
                print(
                    f"{own.name} / {other.name:32}" + "".join(f"{r:17.2f}x{'':8}" for r in ratios)
                )
        print(flush=True)
    return one_association


def bench_durable_files(
    scratch: Path, sets: list[Dataset_], one_association: dict[tuple[str, str], float]
) -> None:
    """What making each received file durable costs alone, the store's own way
    (:meth:`.FileStore.link_received` then :meth:`.LinkedFile.wait`: the file's fsync, then
    its name's), next to the same links without the syncs; then, from the one-association
    run, what storing costs our node per instance beyond the pynetdicom ceiling and what
    0.8x that ceiling leaves for it (the goal on small instances).

    Each file is first written into the store's ``incoming`` directory unsynced, as
    pynetdicom writes a received data set; only what follows is timed.
    """
    from workbench.pacs.store import FileStore

    print("Making each received file durable, the store's way, one file after the other")
    for data in sets:
        costs = {}
        for durable in (False, True):
            store = FileStore(Path(tempfile.mkdtemp(dir=scratch)))
            spent = 0.0
            for path in sorted(data.directory.iterdir()):
                received = store.incoming_dir / path.name
                shutil.copyfile(path, received)
                started = time.perf_counter()
                linked = store.link_received(received)
                if durable:
                    linked.wait()
                else:
                    linked.settle()
                received.unlink()
                spent += time.perf_counter() - started
            costs[durable] = spent / data.count * 1000
            store.close()
            shutil.rmtree(store.root)
        line = (
            f"{data.name:9} {costs[True]:.2f} ms per file durable, {costs[False]:.2f} ms "
            f"linked without a sync ({costs[True] / costs[False]:.1f}x)"
        )
        ceiling = one_association.get((ProtocolOnly.name, data.name))
        node = one_association.get((Ours.name, data.name))
        if ceiling and node:
            line += (
                f"; storing costs our node {1000 / node - 1000 / ceiling:.2f} ms per instance "
                f"over one association beyond the ceiling ({ceiling:.0f}/s), 0.8x the "
                f"ceiling would leave {250 / ceiling:.2f} ms"
            )
        print(line)
    print(flush=True)


def bench_as_installed(repeat: int, scratch: Path, sets: list[Dataset_]) -> None:
    """One association of ``storescu`` into our node and Orthanc with neither started with
    ``TCP_NODELAY``: Nagle's algorithm on in DCMTK, as a user runs them."""
    firsts = []
    for data in sets:
        directory = data.directory.with_name(f"{data.directory.name}-first")
        if not directory.exists():
            directory.mkdir()
            for path in sorted(data.directory.iterdir())[:AS_INSTALLED_FILES]:
                os.link(path, directory / path.name)
        firsts.append(Dataset_(data.name, directory, len(list(directory.iterdir())), 0.0))
    receivers: list[Receiver] = [Ours(), OrthancReceiver()]
    saved = os.environ.pop("TCP_NODELAY")
    try:
        timings: dict[tuple[str, str], list[float]] = {}
        for _ in range(repeat):
            for data in firsts:
                for receiver in receivers:
                    seconds = push(receiver, data.shares(1), scratch)
                    timings.setdefault((receiver.name, data.name), []).append(seconds)
    finally:
        os.environ["TCP_NODELAY"] = saved
    print(
        f"\nC-STORE as installed (no TCP_NODELAY for storescu and Orthanc), one "
        f"association, median of {repeat}; load average {_load()}"
    )
    for data in firsts:
        rates = [data.count / statistics.median(timings[(r.name, data.name)])
                 for r in receivers]  # fmt: skip
        print(
            f"{data.name:9} {data.count} files: ours {rates[0]:7.1f} inst/s, Orthanc "
            f"{rates[1]:7.1f} inst/s, {rates[0] / rates[1]:.2f}x"
        )
    print(flush=True)


def bench_bulk(
    repeat: int, scratch: Path, sets: list[Dataset_], postgres: PostgresPeer | None = None
) -> None:
    """Bulk import (``workbench import``, and a ZIP uploaded to our REST API) next to
    Orthanc's REST upload of the same files."""
    everything = scratch / "bulk"
    everything.mkdir()
    for data in sets:
        for path in data.directory.iterdir():
            os.link(path, everything / f"{data.directory.name}-{path.name}")
    files = sorted(everything.iterdir())
    megabytes = sum(path.stat().st_size for path in files) / 1e6
    archive = scratch / "bulk.zip"
    with zipfile.ZipFile(archive, "w") as zipped:  # stored: the receivers' work, not inflating
        for path in files:
            zipped.write(path, path.name)

    def cli_import(database_url: str | None) -> float:
        workdir = Path(tempfile.mkdtemp(dir=scratch))
        config = workdir / "config.json"
        config.write_text(json.dumps({"DatabaseUrl": database_url} if database_url else {}))
        try:
            started = time.perf_counter()
            subprocess.run(
                [
                    sys.executable,
                    "-m",
                    "workbench.cli",
                    "import",
                    "--config",
                    str(config),
                    "--storage",
                    str(workdir / "storage"),
                    "-q",
                    str(everything),
                ],
                check=True,
                cwd=REPO,
                capture_output=True,
            )
            return time.perf_counter() - started
        finally:
            shutil.rmtree(workdir, ignore_errors=True)

    def upload(receiver: Receiver, zipped: bool) -> float:
        workdir = Path(tempfile.mkdtemp(dir=scratch))
        receiver.start(workdir)
        url = (receiver.peer.url if isinstance(receiver, OrthancReceiver)
               else f"http://127.0.0.1:{receiver.http_port}")  # fmt: skip
        try:
            with requests.Session() as session:
                wait_for_http(session, url)
                started = time.perf_counter()
                for body in [archive] if zipped else files:
                    answer = session.post(url + "/instances", data=body.read_bytes(),
                                          timeout=600)  # fmt: skip
                    answer.raise_for_status()
                return time.perf_counter() - started
        finally:
            receiver.stop()
            shutil.rmtree(workdir, ignore_errors=True)

    runs = {
        "workbench import (CLI, new process)": lambda: cli_import(None),
        "workbench POST /instances, one ZIP": lambda: upload(Ours(), True),
        "Orthanc POST /instances, file by file": lambda: upload(OrthancReceiver(), False),
        "Orthanc POST /instances, one ZIP": lambda: upload(OrthancReceiver(), True),
    }
    if postgres:
        runs["workbench import (CLI), PostgreSQL"] = lambda: cli_import(postgres.new_database())
        runs["Orthanc (PostgreSQL) file by file"] = lambda: upload(
            OrthancReceiver(postgres=postgres), False
        )
    timings: dict[str, list[float]] = {}
    for round_ in range(repeat):
        for name, run in runs.items():
            seconds = run()
            timings.setdefault(name, []).append(seconds)
            print(
                f"  round {round_ + 1}: {name:40} {len(files) / seconds:7.1f} inst/s  "
                f"(load {_load()})",
                flush=True,
            )
    medians = {name: statistics.median(values) for name, values in timings.items()}
    print(
        f"\nBulk import of {len(files)} files ({megabytes:.0f} MB), median of {repeat} "
        f"run(s); load average {_load()}"
    )
    for name, seconds in medians.items():
        print(f"{name:42}{len(files) / seconds:10.1f} inst/s{megabytes / seconds:8.1f} MB/s")
    for own in [name for name in medians if name.startswith("workbench")]:
        for other in [name for name in medians if name.startswith("Orthanc")]:
            print(f"{own} / {other}: {medians[other] / medians[own]:.2f}x")
    print(flush=True)


def wait_for_http(session: requests.Session, url: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if session.get(url + "/system", timeout=5).ok:
                return
        except requests.RequestException:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"{url} did not answer")


def bench_find(studies: int, scratch: Path, queries: int) -> None:
    from workbench.pacs import Config, Index
    from workbench.pacs.node import DicomNode

    print(f"\nC-FIND study latency, {studies} studies in each archive, {queries} queries each")
    records = []
    files_dir = scratch / "find-files"
    files_dir.mkdir()
    template = pydicom.dcmread(SMALL_TEMPLATE)
    for number in range(studies):
        uid = f"1.2.826.0.1.3680043.10.1078.{number}"
        record = {
            "PatientID": f"P{number:06d}",
            "PatientName": f"NAME{number % 997:03d}^GIVEN{number}",
            "StudyInstanceUID": uid,
            "SeriesInstanceUID": uid + ".1",
            "SOPInstanceUID": uid + ".1.1",
            "StudyDate": f"20{number % 20:02d}0101",
            "Modality": "MR",
            "StudyDescription": f"study {number}",
        }
        records.append(record)
        for key, value in record.items():
            setattr(template, key, value)
        template.file_meta.MediaStorageSOPInstanceUID = record["SOPInstanceUID"]
        template.save_as(files_dir / f"{number:06d}.dcm", enforce_file_format=True)

    storage = scratch / "find-ours"
    index = Index(Config(StorageDirectory=str(storage)))
    index.index_records(records)
    index.close()
    declared = {"bench": ["FINDSCU", "127.0.0.1", 1]}  # both refuse queries from unknown AEs
    ours = Ours(declared)
    our_port = ours.start(storage)
    orthanc = OrthancReceiver(declared)
    orthanc_port = orthanc.start(scratch / "find-orthanc")
    try:
        started = time.perf_counter()
        subprocess.run(
            ["storescu", "-aec", "ORTHANC", "+sd", "127.0.0.1", str(orthanc_port), str(files_dir)],
            check=True,
            capture_output=True,
        )
        print(
            f"  (fed Orthanc {studies} studies by C-STORE in {time.perf_counter() - started:.0f} s)"
        )
        config = Config(
            StorageDirectory=str(scratch / "find-client"),
            DicomAet="FINDSCU",
            DicomModalities={
                "ours": ["WORKBENCH", "127.0.0.1", our_port],
                "orthanc": ["ORTHANC", "127.0.0.1", orthanc_port],
            },
        )
        client = DicomNode(None, config)
        kinds = {
            "by StudyInstanceUID": lambda n: {
                "StudyInstanceUID": f"1.2.826.0.1.3680043.10.1078.{n * 7919 % studies}"
            },
            "PatientName wildcard": lambda n: {"PatientName": f"name{n % 997:03d}*"},
            "StudyDate range": lambda n: {"StudyDate": f"20{n % 20:02d}0101-20{n % 20:02d}0630"},
        }
        print(f"{'query':24}{'ours p50 ms':>14}{'Orthanc p50 ms':>16}{'answers':>9}{'ratio':>8}")
        for label, make in kinds.items():
            medians, counts = [], []
            for modality in ("ours", "orthanc"):
                latencies = []
                for n in range(queries):
                    started = time.perf_counter()
                    answers = client.find(modality, "Study", make(n))
                    latencies.append(time.perf_counter() - started)
                counts.append(len(answers))
                medians.append(statistics.median(latencies) * 1000)
            print(
                f"{label:24}{medians[0]:14.1f}{medians[1]:16.1f}{counts[0]:>9}"
                f"{medians[1] / medians[0]:7.2f}x"
            )
    finally:
        ours.stop()
        orthanc.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--studies", type=int, default=10000)
    parser.add_argument("--queries", type=int, default=30)
    parser.add_argument("--quick", action="store_true", help="a quarter of the instances")
    parser.add_argument("--skip-find", action="store_true")
    parser.add_argument("--skip-ingest", action="store_true")
    parser.add_argument("--skip-bulk", action="store_true")
    parser.add_argument(
        "--associations",
        type=int,
        default=8,
        help="concurrent associations of the second ingest run (0: no such run)",
    )
    parser.add_argument(
        "--workers",
        type=int,
        default=2,
        help="DICOM worker processes of the extra row of the concurrent run (1: no such row)",
    )
    parser.add_argument(
        "--only-concurrent", action="store_true", help="leave out the one-association run"
    )
    parser.add_argument(
        "--postgresql",
        action="store_true",
        help="also ingest with the index (ours and Orthanc's) in PostgreSQL",
    )
    parser.add_argument(
        "--as-installed",
        action="store_true",
        help="also run storescu and Orthanc without TCP_NODELAY",
    )
    parser.add_argument(
        "--protocol-only-scp", nargs=3, metavar=("PORT", "AET", "PROCESSES"), help=argparse.SUPPRESS
    )
    args = parser.parse_args()
    if args.protocol_only_scp:
        port, aet, processes = args.protocol_only_scp
        serve_protocol_only(int(port), aet, int(processes))
        return
    for tool in ("storescu", "storescp", "echoscu", "Orthanc"):
        if not shutil.which(tool):
            raise SystemExit(f"{tool} is missing; run scripts/bootstrap.sh")
    with tempfile.TemporaryDirectory(
        prefix="bench-ingest-", dir=REPO.parent / "tmp" if (REPO.parent / "tmp").is_dir() else None
    ) as tmp:
        scratch = Path(tmp)
        postgres = start_postgres(durable=True) if args.postgresql else None
        try:
            sets = make_sets(scratch, args.quick)
            if args.as_installed:
                bench_as_installed(args.repeat, scratch, sets)
            one_association: dict[tuple[str, str], float] = {}
            if not args.skip_ingest:
                one_association = bench_ingest(
                    args.repeat,
                    scratch,
                    sets,
                    args.associations,
                    postgres,
                    args.workers,
                    not args.only_concurrent,
                )
            bench_durable_files(scratch, sets, one_association)
            if not args.skip_bulk:
                bench_bulk(args.repeat, scratch, sets, postgres)
        finally:
            if postgres:
                postgres.remove()
        if not args.skip_find:
            bench_find(args.studies, scratch, args.queries)


if __name__ == "__main__":
    main()
