"""Does a Python hook slow down what modalities see? C-STORE acknowledgement latency with
and without hooks, under 8 concurrent associations.

The PACS runs in a child process (``serve()`` with hooks registered, as a notebook would),
once without hooks and once with a ``stored_instance`` hook that reads each instance and
computes its mean pixel value (a few ms of work per instance) and a ``stable_study`` hook.
The parent opens 8 associations at once (pynetdicom, one thread each) and times every C-STORE
from request to response. Hooks run in a thread of their own that follows the change log, so
the acknowledgement should not wait for them: the figures are p50/p95/p99 latency and their
ratio with hooks / without (goal: within noise, ~1x), and that every instance reached the
hook exactly once.

Usage::

    .venv/bin/python benchmarks/bench_hooks.py [--instances 400] [--associations 8]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import pydicom  # noqa: E402
from pydicom.uid import generate_uid  # noqa: E402

from tests.peers import free_port  # noqa: E402

TEMPLATE = REPO / "data" / "sample" / "nema_mr1_small_transcodes" / "MR_small.dcm"
AET = "HOOKBENCH"

CHILD = r"""
import json, sys, threading, time
import numpy as np, pydicom
from workbench.pacs import serve

storage, port, with_hooks = sys.argv[1], int(sys.argv[2]), sys.argv[3] == "1"
pacs = serve(StorageDirectory=storage, HttpPort=0, DicomPort=port, DicomAet="HOOKBENCH",
             StableAge=2, dicom=True)
seen, stable, lock = [], [], threading.Lock()
if with_hooks:
    @pacs.on("stored_instance")
    def statistics(event):
        path = pacs.index.instance_path(event.id)
        mean = float(np.asarray(pydicom.dcmread(path).pixel_array).mean())
        with lock:
            seen.append((event.id, mean))

    @pacs.on("stable_study")
    def done(event):
        stable.append(event.id)
print("ready", flush=True)
sys.stdin.readline()  # the parent says when it has sent everything
deadline = time.monotonic() + 120
expected = int(sys.argv[4])
while with_hooks and (len(seen) < expected or not stable) and time.monotonic() < deadline:
    time.sleep(0.1)
print(json.dumps({"seen": len(seen), "distinct": len({i for i, _ in seen}),
                  "stable": len(stable)}), flush=True)
pacs.stop()
"""


def generate(out: Path, count: int) -> list[Path]:
    """``count`` small real MR instances with new UIDs, in one study."""
    out.mkdir(parents=True)
    ds = pydicom.dcmread(TEMPLATE)
    ds.StudyInstanceUID, ds.SeriesInstanceUID = generate_uid(), generate_uid()
    paths = []
    for number in range(count):
        ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = generate_uid()
        ds.InstanceNumber = number + 1
        path = out / f"{number:05d}.dcm"
        ds.save_as(path, enforce_file_format=True)
        paths.append(path)
    return paths


def send_all(port: int, files: list[Path], associations: int) -> list[float]:
    """Send ``files`` over ``associations`` concurrent associations; every C-STORE's latency."""
    from pynetdicom import AE

    latencies: list[float] = []
    lock = threading.Lock()
    datasets = [pydicom.dcmread(p) for p in files]

    def worker(part: list) -> None:
        ae = AE(ae_title="BENCHSCU")
        ae.add_requested_context(datasets[0].SOPClassUID, datasets[0].file_meta.TransferSyntaxUID)
        assoc = ae.associate("127.0.0.1", port, ae_title=AET)
        assert assoc.is_established, "association refused"
        mine = []
        try:
            for ds in part:
                start = time.perf_counter()
                status = assoc.send_c_store(ds)
                mine.append(time.perf_counter() - start)
                assert status.Status == 0x0000, hex(status.Status)
        finally:
            assoc.release()
        with lock:
            latencies.extend(mine)

    threads = [
        threading.Thread(target=worker, args=(datasets[i::associations],))
        for i in range(associations)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return latencies


def run(files: list[Path], scratch: Path, with_hooks: bool, associations: int) -> dict:
    port = free_port()
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD, str(scratch / f"store-{int(with_hooks)}"), str(port),
         "1" if with_hooks else "0", str(len(files))],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, cwd=REPO,
    )  # fmt: skip
    assert child.stdout.readline().strip() == "ready"
    start = time.perf_counter()
    latencies = send_all(port, files, associations)
    elapsed = time.perf_counter() - start
    child.stdin.write("sent\n")
    child.stdin.flush()
    report = json.loads(child.stdout.readline())
    child.wait(60)
    latencies.sort()

    def pct(p: float) -> float:
        return latencies[min(len(latencies) - 1, int(p * len(latencies)))] * 1000

    return {
        "p50": pct(0.5), "p95": pct(0.95), "p99": pct(0.99),
        "mean": statistics.fmean(latencies) * 1000, "rate": len(files) / elapsed, **report,
    }  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--instances", type=int, default=400)
    parser.add_argument("--associations", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench_hooks_") as tmp:
        scratch = Path(tmp)
        files = generate(scratch / "files", args.instances)
        print(
            f"{args.instances} small MR instances over {args.associations} associations, "
            f"{args.rounds} rounds taking turns (ms per C-STORE, request to response)"
        )
        results: dict[bool, list[dict]] = {False: [], True: []}
        for round_number in range(args.rounds):
            for with_hooks in (False, True):
                result = run(files, scratch / f"r{round_number}", with_hooks, args.associations)
                results[with_hooks].append(result)
                label = "with hooks   " if with_hooks else "without hooks"
                print(
                    f"  {label} p50 {result['p50']:6.1f}  p95 {result['p95']:6.1f}  "
                    f"p99 {result['p99']:6.1f}  {result['rate']:6.0f} instances/s"
                    + (f"  hook saw {result['seen']} ({result['distinct']} distinct), "
                       f"stable_study {result['stable']}" if with_hooks else "")
                )  # fmt: skip
        for key in ("p50", "p95", "p99"):
            without = statistics.median(r[key] for r in results[False])
            with_ = statistics.median(r[key] for r in results[True])
            print(f"  -> {key}: with / without hooks = {with_ / without:.2f}x "
                  f"({with_:.1f} ms against {without:.1f} ms; goal: ~1x)")  # fmt: skip


if __name__ == "__main__":
    main()
