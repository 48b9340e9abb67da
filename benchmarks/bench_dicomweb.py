"""DICOMweb speed of our server next to Orthanc + its DICOMweb plugin, in the same run.

Data, generated from the real Philips CT header of ``data/sample`` (decompressed once to
Explicit VR Little Endian, as most CT is stored) and the real 64x64 NEMA MR:

- a 200-slice 512x512 CT series (one study), positions 1 mm apart;
- for STOW-RS, 600 CT instances (3 series) and 2,000 small instances (10 series).

Both servers run in their own process (``workbench serve``, Debian's Orthanc with
``orthanc-dicomweb``), and the client is one ``requests`` session per server (keep-alive),
sequential requests, as a viewer's single fetch queue. For the reads both servers are up and
take turns request by request, so that the load of a shared machine weighs on both alike; the
reads are measured twice, accepting gzip (as browsers and requests do) and asking for no
content coding.

Reads (on the 200-slice CT, held by both servers):
QIDO-RS latency at study, series and instance level; series metadata (WADO-RS); frames/s
(``/frames/1`` as uncompressed octet-stream for each of the 200 instances); rendered/s
(``/rendered`` as JPEG for each instance); the rates are those of the median request.
Goal: >= 1x Orthanc.

STOW-RS: each set uploaded in batches (``--batch`` instances per request) into fresh storage,
rounds interleaved, medians in instances/s. Goal: >= 3x Orthanc (one fsync can cover a batch).

Usage::

    .venv/bin/python benchmarks/bench_dicomweb.py [--rounds 3] [--requests 100] [--batch 50]
                                                  [--skip-reads] [--skip-stow] [--quick]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import pydicom  # noqa: E402
import requests  # noqa: E402
from bench_index import WorkbenchProcess  # noqa: E402
from pydicom.uid import generate_uid  # noqa: E402

from tests.peers import start_orthanc  # noqa: E402

SAMPLE = REPO / "data" / "sample"
CT_TEMPLATE = SAMPLE / "series_ct_philips_ingenuity_5mm" / "I10"
SMALL_TEMPLATE = SAMPLE / "nema_mr1_small_transcodes" / "MR_small.dcm"
ROOT = "/dicom-web"
FRAME_ACCEPT = (
    'multipart/related; type="application/octet-stream"; transfer-syntax=1.2.840.10008.1.2.1'
)


# ------------------------------------------------------------------------------------ data
def generate(template: Path, out: Path, count: int, series: int, tag: str) -> list[Path]:
    """``count`` instances made from a real one: new UIDs, ``series`` series of one study,
    slices 1 mm apart along the template's normal; pixel data uncompressed."""
    out.mkdir(parents=True)
    ds = pydicom.dcmread(template)
    if ds.file_meta.TransferSyntaxUID.is_compressed:
        ds.decompress()
    study = generate_uid()
    series_uids = [generate_uid() for _ in range(series)]
    ds.PatientID, ds.PatientName, ds.StudyInstanceUID = f"BENCH-{tag}", f"BENCH^{tag}", study
    origin = [float(v) for v in ds.get("ImagePositionPatient", [0, 0, 0])]
    paths = []
    for number in range(count):
        ds.SeriesInstanceUID = series_uids[number % series]
        ds.SeriesNumber = number % series + 1
        ds.SOPInstanceUID = generate_uid()
        ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
        slice_number = number // series
        ds.InstanceNumber = slice_number + 1
        ds.ImagePositionPatient = [origin[0], origin[1], origin[2] + slice_number]
        path = out / f"{number:05d}.dcm"
        ds.save_as(path, enforce_file_format=True)
        paths.append(path)
    return paths


def multipart(files: list[Path]) -> tuple[bytes, str]:
    """A STOW-RS body of ``files`` and its content type."""
    boundary = uuid.uuid4().hex
    parts = []
    for path in files:
        parts.append(f"--{boundary}\r\nContent-Type: application/dicom\r\n\r\n".encode())
        parts.append(path.read_bytes())
        parts.append(b"\r\n")
    parts.append(f"--{boundary}--\r\n".encode())
    content_type = f'multipart/related; type="application/dicom"; boundary={boundary}'
    return b"".join(parts), content_type


def batches(files: list[Path], size: int) -> list[tuple[bytes, str]]:
    return [multipart(files[i : i + size]) for i in range(0, len(files), size)]


# --------------------------------------------------------------------------------- servers
@dataclass
class Server:
    """One DICOMweb server under test."""

    name: str
    url: str
    stop: Callable[[], None]

    @property
    def root(self) -> str:
        return self.url + ROOT


def start_ours(workdir: Path) -> Server:
    process = WorkbenchProcess(workdir / f"workbench-{uuid.uuid4().hex[:6]}")
    return Server("workbench", process.url, process.stop)


def start_theirs(workdir: Path) -> Server:
    peer = start_orthanc(workdir / f"orthanc-{uuid.uuid4().hex[:6]}", dicomweb_servers={})
    return Server("Orthanc", peer.url, peer.stop)


STARTERS = {"workbench": start_ours, "Orthanc": start_theirs}
SETTLE_SECONDS = 2.0


def stow(session: requests.Session, server: Server, bodies: list[tuple[bytes, str]]) -> float:
    """Send every batch; return the seconds it took. Fails on any refused instance."""
    start = time.perf_counter()
    for body, content_type in bodies:
        answer = session.post(
            f"{server.root}/studies",
            data=body,
            headers={"Content-Type": content_type, "Accept": "application/dicom+json"},
            timeout=600,
        )
        if answer.status_code != 200:
            raise RuntimeError(
                f"{server.name} STOW-RS answered {answer.status_code}: {answer.text[:300]}"
            )
    return time.perf_counter() - start


# ----------------------------------------------------------------------------------- reads
class Reader:
    """One server's client for the reads: a keep-alive session asking for ``encoding``."""

    def __init__(self, server: Server, ct: list[Path], encoding: str) -> None:
        self.server = server
        self.session = requests.Session()
        stow(self.session, server, batches(ct, 50))
        self.session.headers["Accept-Encoding"] = encoding

    def get(self, path: str, headers: dict[str, str]) -> float:
        """Seconds one GET took; fails on any status but 200."""
        start = time.perf_counter()
        answer = self.session.get(self.server.root + path, headers=headers, timeout=120)
        answer.content  # noqa: B018 - the body is part of the request
        elapsed = time.perf_counter() - start
        if answer.status_code != 200:
            raise RuntimeError(
                f"{self.server.name} GET {path}: {answer.status_code} {answer.text[:200]}"
            )
        return elapsed


def read_figures(
    readers: dict[str, Reader], ct: list[Path], requests_count: int
) -> dict[str, dict[str, float]]:
    """Latencies (s, median) and rates (per s) of the reads on the CT series, for each
    server. The servers take turns request by request, so that the load of a shared machine
    weighs on both alike."""
    first = pydicom.dcmread(ct[0], stop_before_pixels=True)
    study, series = first.StudyInstanceUID, first.SeriesInstanceUID
    sops = [pydicom.dcmread(p, stop_before_pixels=True).SOPInstanceUID for p in ct]
    json_accept = {"Accept": "application/dicom+json"}
    figures: dict[str, dict[str, float]] = {name: {} for name in readers}
    queries = {
        "QIDO studies by PatientID": f"/studies?PatientID={first.PatientID}",
        "QIDO series of the study": f"/studies/{study}/series",
        "QIDO instances of the series": f"/studies/{study}/series/{series}/instances",
        f"series metadata ({len(sops)} instances)": f"/studies/{study}/series/{series}/metadata",
    }
    for label, path in queries.items():
        samples = taking_turns(readers, [(path, json_accept)] * (requests_count + 1))
        for name, times in samples.items():
            figures[name][label] = statistics.median(times[1:])  # after one warm-up
    base = f"/studies/{study}/series/{series}/instances"
    for label, suffix, accept in (
        ("frames/s (512x512 uncompressed)", "frames/1", FRAME_ACCEPT),
        ("rendered/s (JPEG)", "rendered", "image/jpeg"),
    ):
        calls = [(f"{base}/{sop}/{suffix}", {"Accept": accept}) for sop in [sops[0], *sops]]
        for name, times in taking_turns(readers, calls).items():
            # From the median request (after one warm-up): on a shared machine a burst of
            # load now and then stretches a few requests of either server by several times,
            # which swung a rate from the sum of the times by 0.8-1.5x between runs.
            figures[name][label] = 1 / statistics.median(times[1:])
    return figures


def taking_turns(
    readers: dict[str, Reader], calls: list[tuple[str, dict[str, str]]]
) -> dict[str, list[float]]:
    """The seconds of each call on each server, the servers taking turns call by call."""
    times: dict[str, list[float]] = {name: [] for name in readers}
    for path, headers in calls:
        for name, reader in readers.items():
            times[name].append(reader.get(path, headers))
    return times


def bench_reads(args: argparse.Namespace, workdir: Path) -> None:
    ct = generate(CT_TEMPLATE, workdir / "read-ct", args.slices, 1, "READ")
    print(
        f"\nReads on a {len(ct)}-slice 512x512 CT, {args.requests} requests per latency, "
        "sequential, the two servers taking turns request by request:"
    )
    # Browsers and requests accept gzip, and Orthanc then deflates its answers (frames
    # included), which costs it time; a client asking for no content coding sees its speed
    # without that. Both, so neither server is judged on one client's habit.
    for encoding in ("gzip, deflate", "identity"):
        servers = {}
        try:
            for name, start in STARTERS.items():
                servers[name] = start(workdir)
            readers = {name: Reader(server, ct, encoding) for name, server in servers.items()}
            print_reads(read_figures(readers, ct, args.requests), encoding)
        except RuntimeError as exc:
            print(f"  {exc}")
        finally:
            for server in servers.values():
                server.stop()


def print_reads(results: dict[str, dict[str, float]], encoding: str) -> None:
    print(f"  Accept-Encoding: {encoding}")
    print(f"  {'':<36} {'workbench':>12} {'Orthanc':>12}   ratio (>= 1x is the goal)")
    for label in next(iter(results.values()), {}):
        ours, theirs = (results.get(n, {}).get(label) for n in ("workbench", "Orthanc"))
        is_rate = label.split(" ")[0].endswith("/s")
        cells = [figure(value, is_rate) for value in (ours, theirs)]
        ratio = ""
        if ours and theirs:
            ratio = f"{(ours / theirs) if is_rate else (theirs / ours):.2f}x"
        print(f"  {label:<36} {cells[0]:>12} {cells[1]:>12}   {ratio}")


def figure(value: float | None, is_rate: bool) -> str:
    if value is None:
        return "n/a"
    return f"{value:.1f}/s" if is_rate else f"{value * 1000:.2f} ms"


# ------------------------------------------------------------------------------------ STOW
def bench_stow(args: argparse.Namespace, workdir: Path) -> None:
    sets = {
        f"{args.ct} CT 512x512": generate(CT_TEMPLATE, workdir / "stow-ct", args.ct, 3, "CT"),
        f"{args.small} small 64x64": generate(
            SMALL_TEMPLATE, workdir / "stow-small", args.small, 10, "SMALL"
        ),
    }
    print(
        f"\nSTOW-RS ingest into fresh storage, {args.batch} instances per request, "
        f"{args.rounds} rounds interleaved (median):"
    )
    print(f"  {'':<22} {'workbench':>14} {'Orthanc':>14}   ratio (>= 3x is the goal)")
    for label, files in sets.items():
        bodies = batches(files, args.batch)
        megabytes = sum(len(body) for body, _ in bodies) / 1e6
        samples: dict[str, list[float]] = {name: [] for name in STARTERS}
        for _ in range(args.rounds):
            for name, start in STARTERS.items():
                server = start(workdir)
                # Each server idles a moment once it answers, so that both have finished
                # starting (our header helper process, Orthanc's plugins): ingest, not
                # start-up, is measured.
                time.sleep(SETTLE_SECONDS)
                try:
                    samples[name].append(stow(requests.Session(), server, bodies))
                except RuntimeError as exc:
                    print(f"  {name}: {exc}")
                finally:
                    server.stop()
        rates = {n: len(files) / statistics.median(t) for n, t in samples.items() if t}
        ratio = ""
        if len(rates) == 2:
            ratio = f"{rates['workbench'] / rates['Orthanc']:.2f}x"
        cells = [f"{rates[n]:.0f} i/s" if n in rates else "n/a" for n in STARTERS]
        print(f"  {label:<22} {cells[0]:>14} {cells[1]:>14}   {ratio}   ({megabytes:.0f} MB)")
        if args.rounds > 1:  # a shared machine's disk and cores swing between rounds
            by_round = {n: " ".join(f"{len(files) / t:.0f}" for t in times)
                        for n, times in samples.items()}  # fmt: skip
            print(f"  {'':<22} rounds, i/s: " + "; ".join(f"{n} {r}" for n, r in by_round.items()))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--requests", type=int, default=100)
    parser.add_argument("--batch", type=int, default=50)
    parser.add_argument("--slices", type=int, default=200)
    parser.add_argument("--ct", type=int, default=600)
    parser.add_argument("--small", type=int, default=2000)
    parser.add_argument("--skip-reads", action="store_true")
    parser.add_argument("--skip-stow", action="store_true")
    parser.add_argument("--quick", action="store_true", help="a tenth of the data, 1 round")
    args = parser.parse_args()
    if args.quick:
        args.rounds, args.requests = 1, 20
        args.slices, args.ct, args.small = 20, 60, 200
    with tempfile.TemporaryDirectory(prefix="bench-dicomweb-") as tmp:
        if not args.skip_reads:
            bench_reads(args, Path(tmp))
        if not args.skip_stow:
            bench_stow(args, Path(tmp))


if __name__ == "__main__":
    main()
