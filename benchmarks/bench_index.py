"""Index and REST API speed, next to a real Orthanc, then at a million instances.

Part 1 (same run, same files, same machine): every file of ../shared/data is uploaded with
``POST /instances`` to our server and to a real Orthanc (Debian package, SQLite), fresh
storage each round, rounds interleaved, by one client and by ``--clients`` (8) clients at
once; then latencies of ``GET /studies``, ``GET /series/{id}`` and
``GET /instances/{id}/simplified-tags``. When ``--databases`` names postgresql, the same on a
PostgreSQL started for the run: our server, two of our servers sharing one database and one
storage directory (the clients spread over both), and Orthanc with the Debian
``orthanc-postgresql`` index plugin.

Part 2: an index of ``--instances`` instance rows (10,000 patients by default, realistic tag
values) is filled through ``Index.index_records`` (the index API, in bulk, without files), and
``/tools/find`` is timed by StudyInstanceUID, PatientID, PatientName wildcard and StudyDate
range, in process, over REST and as C-FIND through our DIMSE node: on SQLite, then on a
PostgreSQL started for the run (Debian ``postgresql``, default durability settings), each
PostgreSQL figure printed with its ratio to SQLite's.

Goals: /tools/find by UID <= 10 ms at 1M instances (Orthanc's SQLite benchmark reports 226 ms
at 1.2M), wildcard/date queries <= 100 ms, REST reads <= 3 ms p50.

Usage::

    .venv/bin/python benchmarks/bench_index.py [--instances 1000000] [--rounds 3]
                                               [--requests 200] [--skip-orthanc]
                                               [--databases sqlite,postgresql]
                                               [--clients 8] [--skip-scale]
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import requests  # noqa: E402

from tests.peers import (  # noqa: E402
    free_port,
    orthanc_postgresql_index,
    start_orthanc,
    start_postgres,
)
from workbench.pacs import Config, Index  # noqa: E402

SHARED = REPO.parent / "shared" / "data"
NOT_DICOM = {"MANIFEST.tsv", "README.md"}

SURNAMES = [
    "SMITH",
    "JOHNSON",
    "WILLIAMS",
    "BROWN",
    "JONES",
    "GARCIA",
    "MILLER",
    "DAVIS",
    "RODRIGUEZ",
    "MARTINEZ",
    "HERNANDEZ",
    "LOPEZ",
    "GONZALEZ",
    "WILSON",
    "ANDERSON",
    "THOMAS",
    "TAYLOR",
    "MOORE",
    "JACKSON",
    "MARTIN",
    "LEE",
    "PEREZ",
    "THOMPSON",
    "WHITE",
    "HARRIS",
    "SANCHEZ",
    "CLARK",
    "RAMIREZ",
    "LEWIS",
    "ROBINSON",
    "MULLER",
    "SCHMIDT",
    "SCHNEIDER",
    "FISCHER",
    "WEBER",
    "DUBOIS",
    "MOREAU",
    "LAURENT",
    "ROSSI",
    "RUSSO",
    "FERRARI",
    "NOVAK",
    "KOWALSKI",
    "NIELSEN",
    "JANSEN",
    "PETERS",
]
GIVEN = [
    "JAMES",
    "MARY",
    "JOHN",
    "PATRICIA",
    "ROBERT",
    "JENNIFER",
    "MICHAEL",
    "LINDA",
    "DAVID",
    "ELIZABETH",
    "ANNA",
    "PIERRE",
    "MARIE",
    "LUCA",
    "GIULIA",
    "JAN",
    "EVA",
    "PAUL",
    "SARAH",
    "THOMAS",
    "LAURA",
    "PETER",
    "SOFIA",
    "KARL",
    "EMMA",
]
STUDY_KINDS = [
    ("CT", "CT HEAD WO CONTRAST", "HEAD"),
    ("CT", "CT CHEST ABDOMEN PELVIS", "CHEST"),
    ("MR", "MR BRAIN W WO CONTRAST", "BRAIN"),
    ("MR", "MR KNEE LEFT", "KNEE"),
    ("CR", "XR CHEST 2 VIEWS", "CHEST"),
    ("US", "US ABDOMEN COMPLETE", "ABDOMEN"),
    ("DX", "XR HAND RIGHT", "HAND"),
    ("PT", "PET CT WHOLE BODY", "WHOLEBODY"),
]


# --------------------------------------------------------------------------------- helpers
def percentiles(samples: list[float]) -> tuple[float, float]:
    """(p50, p95) in milliseconds."""
    ordered = sorted(samples)
    p95 = ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]
    return statistics.median(ordered) * 1000, p95 * 1000


def timed(call: Callable[[], object], repeat: int) -> list[float]:
    """Durations of ``repeat`` calls, after one warm-up call."""
    call()
    samples = []
    for _ in range(repeat):
        start = time.perf_counter()
        call()
        samples.append(time.perf_counter() - start)
    return samples


def show(label: str, samples: list[float], goal_ms: float | None = None) -> float:
    p50, p95 = percentiles(samples)
    verdict = ""
    if goal_ms is not None:
        verdict = f"  goal <= {goal_ms:g} ms: {'met' if p50 <= goal_ms else 'MISSED'}"
    print(f"  {label:<46} p50 {p50:8.2f} ms   p95 {p95:8.2f} ms{verdict}")
    return p50


# ------------------------------------------------------------------------ part 1: vs Orthanc
def upload_all(bases: list[str], files: list[tuple[Path, bytes]], clients: int = 1) -> float:
    """Upload every file once with ``clients`` clients at once (each its own keep-alive
    session, the files dealt among them, the clients spread over ``bases``); return
    instances per second."""

    def client(number: int) -> None:
        base = bases[number % len(bases)]
        with requests.Session() as session:
            for path, data in files[number::clients]:
                response = session.post(f"{base}/instances", data=data, timeout=60)
                if response.status_code != 200:
                    raise RuntimeError(
                        f"{base} refused {path}: {response.status_code} {response.text}"
                    )

    start = time.perf_counter()
    with ThreadPoolExecutor(clients) as pool:
        list(pool.map(client, range(clients)))
    return len(files) / (time.perf_counter() - start)


class WorkbenchProcess:
    """``workbench serve`` in its own process (like Orthanc: no GIL shared with the client)."""

    def __init__(self, storage: Path, **options: object) -> None:
        self.http_port, self.dicom_port = free_port(), free_port()
        config = {
            "StorageDirectory": str(storage),
            "HttpPort": self.http_port,
            "DicomPort": self.dicom_port,
            **options,
        }
        name = f"{storage.name}-{self.http_port}"  # several servers may share the storage
        config_path = storage.parent / f"{name}.json"
        config_path.write_text(json.dumps(config))
        self.url = f"http://127.0.0.1:{self.http_port}"
        self.log = open(storage.parent / f"{name}.log", "wb")  # noqa: SIM115
        self.process = subprocess.Popen(
            [sys.executable, "-m", "workbench.cli", "serve", "--config", str(config_path)],
            cwd=REPO,
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"workbench serve exited; see {self.log.name}")
            try:
                if requests.get(f"{self.url}/system", timeout=2).ok:
                    return
            except requests.ConnectionError:
                time.sleep(0.2)
        self.stop()
        raise RuntimeError("workbench serve did not answer within 120 s")

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
        self.log.close()


def clear(base: str) -> None:
    for patient in requests.get(f"{base}/patients", timeout=60).json():
        requests.delete(f"{base}/patients/{patient}", timeout=60)


def part_one(args: argparse.Namespace, workdir: Path) -> None:
    files = [
        (p, p.read_bytes())
        for p in sorted(SHARED.rglob("*"))
        if p.is_file() and p.name not in NOT_DICOM
    ]
    total_mb = sum(len(d) for _, d in files) / 1e6
    print(f"\n== REST next to Orthanc: {len(files)} files ({total_mb:.1f} MB) of ../shared/data")
    postgres = start_postgres(durable=True) if "postgresql" in args.databases else None
    started: list = []
    try:
        servers = start_servers(args, workdir, postgres, started)
        rates: dict[tuple[str, int], list[float]] = {}
        for _ in range(args.rounds):
            for clients in (1, args.clients):
                for name, bases in servers.items():  # interleaved, fresh storage each round
                    clear(bases[0])
                    rates.setdefault((name, clients), []).append(upload_all(bases, files, clients))
        medians = {key: statistics.median(values) for key, values in rates.items()}
        for clients in (1, args.clients):
            print(f"  POST /instances throughput, {clients} client(s) at once (median of rounds):")
            for name in servers:
                rate = medians[(name, clients)]
                print(
                    f"    {name:<34} {rate:8.1f} instances/s "
                    f"({rate * total_mb / len(files):.1f} MB/s)"
                )
            for own in [name for name in servers if not name.startswith("Orthanc")]:
                for other in [name for name in servers if name.startswith("Orthanc")]:
                    print(
                        f"    ratio {own} / {other}: "
                        f"{medians[(own, clients)] / medians[(other, clients)]:.2f}x"
                    )

        print(f"  Read latencies ({args.requests} requests each, one keep-alive session):")
        rng = random.Random(7)
        p50s: dict[str, dict[str, float]] = {}
        for name, (base, *_) in servers.items():
            session = requests.Session()
            series = session.get(f"{base}/series", timeout=30).json()
            instances = session.get(f"{base}/instances", timeout=30).json()
            goal = None if name.startswith("Orthanc") else 3.0
            show(
                f"{name}: GET /system (HTTP floor, no index)",
                timed(
                    lambda s=session, b=base: s.get(f"{b}/system").raise_for_status(), args.requests
                ),
            )
            p50s[name] = {
                "studies": show(
                    f"{name}: GET /studies",
                    timed(
                        lambda s=session, b=base: s.get(f"{b}/studies").raise_for_status(),
                        args.requests,
                    ),
                    goal,
                ),
                "series": show(
                    f"{name}: GET /series/{{id}}",
                    timed(
                        lambda s=session, b=base, ids=series: s.get(
                            f"{b}/series/{rng.choice(ids)}"
                        ).raise_for_status(),
                        args.requests,
                    ),
                    goal,
                ),
                "tags": show(
                    f"{name}: GET /instances/{{id}}/simplified-tags",
                    timed(
                        lambda s=session, b=base, ids=instances: s.get(
                            f"{b}/instances/{rng.choice(ids)}/simplified-tags"
                        ).raise_for_status(),
                        args.requests,
                    ),
                    goal,
                ),
            }
        for own in [name for name in servers if not name.startswith("Orthanc")]:
            for other in [name for name in servers if name.startswith("Orthanc")]:
                for key in ("studies", "series", "tags"):
                    print(
                        f"    {key:<8} latency ratio {other} / {own}: "
                        f"{p50s[other][key] / p50s[own][key]:.2f}x"
                    )
    finally:
        for server in started:
            server.stop()
        if postgres:
            postgres.remove()


def start_servers(
    args: argparse.Namespace, workdir: Path, postgres, started: list
) -> dict[str, list[str]]:
    """Name -> base URLs of the servers of part 1 (each added to ``started`` as it starts)."""

    def ours(storage: Path, **options: object) -> str:
        started.append(WorkbenchProcess(storage, **options))
        return started[-1].url

    def orthanc(directory: Path, **options: object) -> str:
        started.append(start_orthanc(directory, **options))
        return started[-1].url

    servers = {"workbench": [ours(workdir / "ours")]}
    if postgres:
        servers["workbench (PostgreSQL)"] = [
            ours(workdir / "ours-pg", DatabaseUrl=postgres.new_database())
        ]
        shared = postgres.new_database()
        servers["2 workbench servers, 1 PostgreSQL"] = [
            ours(workdir / "ours-2", DatabaseUrl=shared) for _ in range(2)
        ]
    if not args.skip_orthanc:
        servers["Orthanc 1.10"] = [orthanc(workdir / "orthanc")]
        if postgres:
            servers["Orthanc 1.10 (PostgreSQL)"] = [
                orthanc(workdir / "orthanc-pg", extra=orthanc_postgresql_index(postgres))
            ]
    return servers


# ----------------------------------------------------------------------- part 2: 1M instances
def records(instances: int, patients: int, seed: int = 1) -> Iterator[dict[str, str]]:
    """Realistic instance records: ``patients`` patients, 2 studies x 2 series each."""
    rng = random.Random(seed)
    per_patient = max(4, instances // patients)
    per_series = per_patient // 4
    emitted = 0
    for p in range(patients):
        patient = {
            "PatientID": f"PID{p:07d}",
            "PatientName": f"{rng.choice(SURNAMES)}^{rng.choice(GIVEN)}",
            "PatientBirthDate": f"{rng.randint(1930, 2020)}{rng.randint(1, 12):02d}"
            f"{rng.randint(1, 28):02d}",
            "PatientSex": rng.choice("MF"),
        }
        for s in range(2):
            modality, description, body_part = rng.choice(STUDY_KINDS)
            study = {
                **patient,
                "StudyInstanceUID": f"1.2.826.0.1.3680043.8.498.1.{p}.{s}",
                "StudyDate": f"{rng.randint(2000, 2024)}{rng.randint(1, 12):02d}"
                f"{rng.randint(1, 28):02d}",
                "StudyTime": f"{rng.randint(7, 19):02d}{rng.randint(0, 59):02d}00",
                "AccessionNumber": f"ACC{p:07d}{s}",
                "StudyDescription": description,
                "StudyID": str(s + 1),
                "ReferringPhysicianName": f"{rng.choice(SURNAMES)}^{rng.choice(GIVEN)}",
                "InstitutionName": "GENERAL HOSPITAL",
            }
            for r in range(2):
                series = {
                    **study,
                    "SeriesInstanceUID": f"{study['StudyInstanceUID']}.{r}",
                    "Modality": modality,
                    "SeriesNumber": str(r + 1),
                    "SeriesDescription": f"{body_part} {'AXIAL' if r == 0 else 'CORONAL'}",
                    "BodyPartExamined": body_part,
                    "Manufacturer": rng.choice(["SIEMENS", "GE MEDICAL SYSTEMS", "PHILIPS"]),
                }
                for i in range(per_series):
                    if emitted >= instances:
                        return
                    emitted += 1
                    yield {
                        **series,
                        "SOPInstanceUID": f"{series['SeriesInstanceUID']}.{i + 1}",
                        "SOPClassUID": "1.2.840.10008.5.1.4.1.1.2",
                        "InstanceNumber": str(i + 1),
                    }


def part_two(
    args: argparse.Namespace, workdir: Path, database: str, baseline: dict[str, float]
) -> dict[str, float]:
    """Fill an index on ``database`` and time the queries; return each figure's p50 (ms).

    With ``baseline`` (the same figures on another database), each is printed as a ratio.
    """
    postgres = start_postgres(durable=True) if database == "postgresql" else None
    try:
        url = postgres.new_database() if postgres else None
        return _scale(args, workdir / f"scale-{database}", database, url, baseline)
    finally:
        if postgres:
            postgres.remove()


def _scale(
    args: argparse.Namespace,
    storage: Path,
    database: str,
    url: str | None,
    baseline: dict[str, float],
) -> dict[str, float]:
    print(
        f"\n== Scale on {database}: {args.instances:,} instances of {args.patients:,} "
        "patients inserted through Index.index_records"
    )
    figures: dict[str, float] = {}

    def show_figure(label: str, samples: list[float], goal_ms: float | None = None) -> None:
        figures[label] = show(label, samples, goal_ms)
        if label in baseline:
            print(f"  {'':<46} {figures[label] / baseline[label]:.2f}x sqlite's p50")

    index = Index(
        Config(
            StorageDirectory=str(storage),
            DicomPort=0,
            HttpPort=0,
            DicomAlwaysAllowFind=True,
            DatabaseUrl=url,
        )
    )
    start = time.perf_counter()
    inserted = index.index_records(records(args.instances, args.patients), batch_size=20000)
    elapsed = time.perf_counter() - start
    stats = index.statistics()
    print(
        f"  inserted {inserted:,} instance rows in {elapsed:.1f} s "
        f"({inserted / elapsed:,.0f} rows/s); {stats['CountStudies']:,} studies, "
        f"{stats['CountSeries']:,} series, {stats['CountPatients']:,} patients"
    )

    rng = random.Random(3)
    sample_patients = [f"PID{rng.randrange(args.patients):07d}" for _ in range(64)]
    sample_studies = [
        f"1.2.826.0.1.3680043.8.498.1.{rng.randrange(args.patients)}.{rng.randrange(2)}"
        for _ in range(64)
    ]
    queries: list[tuple[str, str, Callable[[], dict[str, str]], float]] = [
        ("Study", "StudyInstanceUID", lambda: {"StudyInstanceUID": rng.choice(sample_studies)}, 10),
        ("Study", "PatientID", lambda: {"PatientID": rng.choice(sample_patients)}, 10),
        ("Study", "PatientName wildcard SMITH^J*", lambda: {"PatientName": "SMITH^J*"}, 100),
        ("Study", "StudyDate range (one month)", lambda: {"StudyDate": "20150301-20150331"}, 100),
        (
            "Instance",
            "Instance by SOPInstanceUID",
            lambda: {"SOPInstanceUID": rng.choice(sample_studies) + ".0.1"},
            10,
        ),
    ]
    for level, label, make, _goal in queries:
        count = len(index.find(level, make()))
        print(f"    {label}: {count} match(es) per query")

    print(f"  In process, Index.find ({args.requests} queries each):")
    for level, label, make, goal in queries:
        show_figure(
            label, timed(lambda lv=level, mk=make: index.find(lv, mk()), args.requests), goal
        )

    instance_ids = index.find("Instance", {"PatientID": sample_patients[0]})
    series_ids = index.find("Series", {"PatientID": sample_patients[0]})
    index.close()
    server = WorkbenchProcess(storage, DicomAlwaysAllowFind=True, DatabaseUrl=url)
    base = server.url
    session = requests.Session()
    print(f"  REST POST /tools/find ({args.requests} queries each, keep-alive):")
    try:
        for level, label, make, goal in queries:
            show_figure(
                f"REST {label}",
                timed(
                    lambda lv=level, mk=make: session.post(
                        f"{base}/tools/find", json={"Level": lv, "Query": mk()}
                    ).raise_for_status(),
                    args.requests,
                ),
                goal,
            )
        show(
            "GET /system (HTTP floor, no index)",
            timed(lambda: session.get(f"{base}/system").raise_for_status(), args.requests),
        )
        show_figure(
            "GET /series/{id} at scale",
            timed(
                lambda: session.get(f"{base}/series/{rng.choice(series_ids)}").raise_for_status(),
                args.requests,
            ),
            3,
        )
        show_figure(
            "GET /instances/{id} at scale",
            timed(
                lambda: session.get(
                    f"{base}/instances/{rng.choice(instance_ids)}"
                ).raise_for_status(),
                args.requests,
            ),
            3,
        )
        cfind(args, server, queries, show_figure)
    finally:
        server.stop()
    return figures


def cfind(args: argparse.Namespace, server: WorkbenchProcess, queries, show_figure) -> None:
    """The same queries as C-FIND (Study Root, STUDY level) through our DIMSE node."""
    from pydicom.dataset import Dataset
    from pynetdicom import AE
    from pynetdicom.sop_class import StudyRootQueryRetrieveInformationModelFind

    ae = AE(ae_title="BENCH")
    ae.add_requested_context(StudyRootQueryRetrieveInformationModelFind)
    try:
        from pynetdicom import evt

        from workbench.pacs.node.contexts import tune_association

        handlers = [(evt.EVT_CONN_OPEN, tune_association)]  # TCP_NODELAY on our side too
    except ImportError:
        handlers = []
    try:
        assoc = ae.associate(
            "127.0.0.1", server.dicom_port, ae_title="WORKBENCH", evt_handlers=handlers
        )
        if not assoc.is_established:
            print("  C-FIND skipped: association refused")
            return

        def run(level: str, query: dict[str, str]) -> int:
            identifier = Dataset()
            identifier.QueryRetrieveLevel = "STUDY" if level == "Study" else "IMAGE"
            for keyword in ("StudyInstanceUID", "PatientID", "PatientName", "StudyDate"):
                setattr(identifier, keyword, "")
            if level == "Instance":
                identifier.SeriesInstanceUID = ""
                identifier.SOPInstanceUID = ""
            for keyword, value in query.items():
                setattr(identifier, keyword, value)
            answers = 0
            for status, _ in assoc.send_c_find(
                identifier, StudyRootQueryRetrieveInformationModelFind
            ):
                if status and status.Status in (0xFF00, 0xFF01):
                    answers += 1
            return answers

        print(f"  C-FIND through our node, one association ({args.requests} queries each):")
        for level, label, make, goal in queries:
            if level == "Instance":
                continue  # an IMAGE query needs the study and series keys above it
            show_figure(
                f"C-FIND {label}",
                timed(lambda lv=level, mk=make: run(lv, mk()), args.requests),
                goal,
            )
        assoc.release()
    finally:
        ae.shutdown()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--instances", type=int, default=1_000_000)
    parser.add_argument("--patients", type=int, default=10_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument(
        "--clients", type=int, default=8, help="clients uploading at once in the second upload run"
    )
    parser.add_argument("--skip-orthanc", action="store_true")
    parser.add_argument("--skip-scale", action="store_true")
    parser.add_argument(
        "--databases",
        default="sqlite,postgresql",
        help="the index databases of part 2, the first one the baseline",
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-index-") as tmp:
        workdir = Path(tmp)
        part_one(args, workdir)
        if not args.skip_scale:
            baseline: dict[str, float] = {}
            for database in args.databases.split(","):
                figures = part_two(args, workdir, database, baseline)
                baseline = baseline or figures


if __name__ == "__main__":
    main()
