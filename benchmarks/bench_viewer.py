"""Python-side cost of viewer redraws, bytes sent per frame, and scrolling a long series.

Measures, on real data from ``../shared/data``:

* one W/L-drag redraw and one scroll redraw of a 512² CT frame in a 512² viewport, and of a
  2140×1760 CR (NEMA RG2, the nearest real file to 2048²) in a 512² viewport: everything the
  kernel does per event (sample visible pixels, window, encode, queue the canvas commands),
  p50 and p95 over many redraws;
* bytes sent to the browser per frame, against a baseline measured in the same run: the
  straightforward approach (window the whole frame, ``Canvas.put_image_data`` of the full
  frame, the browser scales it);
* scrolling a 300-slice series opened lazily (built from real CT slices in a temporary
  folder) at 20 frames/s: first pass (decoding, with background prefetch) and second pass
  (from the cache), counting stalls (> 50 ms) and the cache's memory against its budget.

* MPR of that 300-slice series: time to the first axial image and to all three planes
  (the volume decoded once), next to the first image of a plain 1×1 viewer and to
  ``volume.values`` (dask decoding the whole volume); reformatted-plane redraw p50 (scroll
  in the coronal plane, with the other planes' reference lines redrawn) and a 20 mm MIP slab
  redraw, next to the acquired axial scroll redraw; process RSS with the MPR open, against
  the caches' budgets.

Run: ``.venv/bin/python benchmarks/bench_viewer.py`` (about a minute; ``--only mpr`` for the
MPR figures alone). No browser is needed:
canvas messages are captured where ipycanvas hands them to the widget comm.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
DATA = REPO.parent / "shared" / "data"
CT_SERIES = DATA / "series_ct_philips_ingenuity_5mm"
CR_FILE = DATA / "nema_cr_rg2_fuji" / "RG2_JPLL.dcm"


class MessageMeter:
    """Counts the bytes ipycanvas sends (JSON commands + binary buffers)."""

    def __init__(self) -> None:
        from ipycanvas import canvas as ipycanvas_canvas

        self.manager = ipycanvas_canvas._CANVAS_MANAGER
        self.bytes = 0
        self.messages = 0
        original = self.manager.send

        def send(content, buffers=None):
            self.messages += 1
            self.bytes += sum(len(memoryview(b).cast("B")) for b in buffers or [])
            return original(content, buffers=buffers)

        self.manager.send = send

    def reset(self) -> None:
        self.bytes = self.messages = 0


def percentiles(samples: list[float]) -> tuple[float, float]:
    ordered = sorted(samples)
    return statistics.median(ordered), ordered[int(0.95 * (len(ordered) - 1))]


def time_redraws(action, count: int) -> list[float]:
    times = []
    for i in range(count):
        start = time.perf_counter()
        action(i)
        times.append((time.perf_counter() - start) * 1000)
    return times


def baseline_redraw(stack, index: int, window, meter: MessageMeter) -> tuple[float, int]:
    """Whole-frame window + ipycanvas put_image_data of the full frame (browser scales)."""
    from ipycanvas import Canvas, hold_canvas

    from workbench.io import display

    canvas = Canvas(width=512, height=512)
    frame = stack[index].values
    meter.reset()
    start = time.perf_counter()
    pixels = display.render(frame, display.display_attrs(stack), window=window)
    with hold_canvas():
        canvas.put_image_data(pixels, 0, 0)
    elapsed = (time.perf_counter() - start) * 1000
    canvas.close()
    return elapsed, meter.bytes


def bench_redraw(label: str, source, meter: MessageMeter, count: int) -> None:
    from workbench.widgets import Viewer

    viewer = Viewer(source, size=(518, 542), thumbnails=False)
    viewport = viewer.viewports[0]
    stack = viewport.stack
    frames = viewport.frame_count
    for i in range(frames):  # decode up front: this measures redraw, not decoding
        viewport.pixels(i)
    center, width = viewport.effective_window()

    def window(i: int) -> tuple[float, float]:
        return (center + i % 50, width + i % 70)

    meter.reset()
    image_bytes = viewer.views[0].bytes_sent
    wl = time_redraws(lambda i: setattr(viewport, "window", window(i)), count)
    wl_bytes = meter.bytes / count
    image_bytes = (viewer.views[0].bytes_sent - image_bytes) / count
    scroll_count = min(count, 4 * frames) if frames > 1 else 0
    meter.reset()
    scroll = time_redraws(lambda i: setattr(viewport, "frame", i % frames), scroll_count)
    scroll_bytes = meter.bytes / max(scroll_count, 1)
    base = [baseline_redraw(stack, 0, window(i), meter) for i in range(max(count // 10, 5))]
    base_ms = statistics.median(b[0] for b in base)
    base_bytes = statistics.median(b[1] for b in base)
    wl50, wl95 = percentiles(wl)
    size = f"{stack.sizes['y']}×{stack.sizes['x']} {stack.dtype}"
    print(f"\n{label}: {size}, viewport 512², zoom {viewport.effective_zoom:.3f}")
    print(f"  W/L redraw      p50 {wl50:6.1f} ms   p95 {wl95:6.1f} ms   "
          f"{wl_bytes / 1024:7.1f} kB/frame ({image_bytes / 1024:.1f} kB image PNG, "
          f"rest overlay commands)")  # fmt: skip
    if scroll_count:
        s50, s95 = percentiles(scroll)
        print(f"  scroll redraw   p50 {s50:6.1f} ms   p95 {s95:6.1f} ms   "
              f"{scroll_bytes / 1024:7.1f} kB/frame")  # fmt: skip
    raw = stack.sizes["y"] * stack.sizes["x"] * stack.dtype.itemsize
    print(f"  baseline (window whole frame, put_image_data, image only): p50 {base_ms:6.1f} ms, "
          f"{base_bytes / 1024:7.1f} kB/frame")  # fmt: skip
    ratio_bytes = base_bytes / image_bytes
    print(f"  baseline/ours: time {base_ms / wl50:.2f}×, image bytes {ratio_bytes:.2f}×;"
          f" raw modality frame {raw / 1024:.0f} kB")  # fmt: skip
    viewer.close()


def make_long_series(folder: Path, count: int) -> None:
    """``count`` slices from the real CT series, renumbered as one 1.0 mm-spaced series."""
    import pydicom
    from pydicom.uid import generate_uid

    templates = [pydicom.dcmread(p) for p in sorted(CT_SERIES.iterdir())]
    series_uid = generate_uid()
    for i in range(count):
        ds = templates[i % len(templates)]
        ds.SeriesInstanceUID = series_uid
        ds.SOPInstanceUID = generate_uid()
        ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
        ds.InstanceNumber = i + 1
        x, y, _ = (float(v) for v in ds.ImagePositionPatient)
        ds.ImagePositionPatient = [x, y, float(i)]
        ds.SliceLocation = float(i)
        ds.save_as(folder / f"slice{i:04d}.dcm")


def bench_scroll(count: int, fps: float, cache_mb: int) -> None:
    import psutil

    from workbench.io import open_series
    from workbench.widgets import Viewer

    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        make_long_series(folder, count)
        start = time.perf_counter()
        volume = open_series(folder)
        opened = (time.perf_counter() - start) * 1000
        viewer = Viewer(volume, size=(518, 542), thumbnails=False,
                        cache_bytes=cache_mb * 1024 * 1024)  # fmt: skip
        viewport = viewer.viewports[0]
        cache = viewer.model.cache
        period = 1.0 / fps
        process = psutil.Process()
        print(f"\nscroll {count} lazily opened 512² CT slices at {fps:.0f} frames/s "
              f"(open_series {opened:.0f} ms, cache budget {cache_mb} MB)")  # fmt: skip
        for name in ("first pass (decode + prefetch)", "second pass"):
            times, late = [], 0
            misses = cache.misses
            next_tick = time.perf_counter()
            for i in range(count):
                start = time.perf_counter()
                viewport.frame = i
                elapsed = time.perf_counter() - start
                times.append(elapsed * 1000)
                late += elapsed > period
                next_tick += period
                time.sleep(max(0.0, next_tick - time.perf_counter()))
            p50, p95 = percentiles(times)
            print(f"  {name:32s} p50 {p50:5.1f} ms  p95 {p95:5.1f} ms  max {max(times):6.1f} ms  "
                  f"stalls(>{period * 1000:.0f} ms) {late}/{count}  cache misses "
                  f"{cache.misses - misses}")  # fmt: skip
        rss = process.memory_info().rss / 2**20
        print(f"  cache {cache.nbytes / 2**20:.0f} MB in {len(cache)} frames "
              f"(budget {cache_mb} MB); process RSS {rss:.0f} MB")  # fmt: skip
        viewer.close()


def bench_mpr(count: int, redraws: int, volume_mb: int) -> None:
    import psutil

    from workbench.io import open_series
    from workbench.widgets import Viewer
    from workbench.widgets.model import ViewerModel
    from workbench.widgets.mpr import VolumeCache
    from workbench.widgets.render import encode_png, render_viewport

    process = psutil.Process()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        make_long_series(folder, count)
        open_series(folder)  # headers in the OS cache for both the baseline and ours

        def first_image(model) -> None:
            encode_png(render_viewport(model.viewports[0]).pixels)

        # Baseline: the first image of a plain 1x1 viewer on the same series (after one
        # run that pays for first-use imports).
        first_image(ViewerModel([open_series(folder)]))
        start = time.perf_counter()
        plain = ViewerModel([open_series(folder)])
        first_image(plain)
        plain_ms = (time.perf_counter() - start) * 1000
        start = time.perf_counter()
        open_series(folder).values  # noqa: B018 - baseline: dask decoding the whole volume
        values_ms = (time.perf_counter() - start) * 1000

        volumes = VolumeCache(volume_mb * 2**20)
        start = time.perf_counter()
        volume = open_series(folder)
        model = ViewerModel([volume], volumes=volumes)
        model.layout = "mpr"
        first_image(model)
        first_ms = (time.perf_counter() - start) * 1000
        for viewport in model.viewports[1:]:
            encode_png(render_viewport(viewport).pixels)
        all_ms = (time.perf_counter() - start) * 1000
        volumes.close()
        print(f"\nMPR of {count} lazily opened 512² CT slices (volume cache {volume_mb} MB)")
        print(f"  first axial image   {first_ms:7.0f} ms   baseline 1×1 viewer first image "
              f"{plain_ms:6.0f} ms   ratio {first_ms / plain_ms:.2f}×")  # fmt: skip
        print(f"  all three planes    {all_ms:7.0f} ms   baseline volume.values (dask) "
              f"{values_ms:6.0f} ms   ratio {all_ms / values_ms:.2f}×")  # fmt: skip

        import gc

        del plain, model
        gc.collect()
        rss_before = process.memory_info().rss / 2**20
        viewer = Viewer(volume, size=(3 * 518, 542), thumbnails=False,
                        volume_bytes=volume_mb * 2**20)  # fmt: skip
        viewer.layout = "mpr"
        axial, coronal, _ = viewer.viewports
        for i in range(axial.frame_count):  # decoded up front: redraws, not decoding
            axial.pixels(i)
        frames = coronal.frame_count
        scroll = time_redraws(lambda i: setattr(axial, "frame", i % axial.frame_count), redraws)
        reformatted = time_redraws(lambda i: setattr(coronal, "frame", (7 * i) % frames), redraws)
        coronal.slab = (20, "mip")
        mip = time_redraws(lambda i: setattr(coronal, "frame", (7 * i) % frames), redraws // 2)
        base50, _ = percentiles(scroll)
        for name, times in (("reformatted (coronal) redraw", reformatted),
                            ("20 mm MIP (coronal) redraw", mip)):  # fmt: skip
            p50, p95 = percentiles(times)
            print(f"  {name:30s} p50 {p50:6.1f} ms  p95 {p95:6.1f} ms   baseline acquired "
                  f"axial scroll p50 {base50:5.1f} ms   ratio {p50 / base50:.2f}×")  # fmt: skip
        rss = process.memory_info().rss / 2**20
        frames_mb = viewer.model.cache.nbytes / 2**20
        volumes_mb = viewer.model.volumes.nbytes / 2**20
        print(f"  RSS with the MPR open {rss:.0f} MB (+{rss - rss_before:.0f} MB over before): "
              f"volume cache {volumes_mb:.0f} MB of {volume_mb} MB, frame cache "
              f"{frames_mb:.0f} MB of {viewer.model.cache.max_bytes / 2**20:.0f} MB")  # fmt: skip
        viewer.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--redraws", type=int, default=200)
    parser.add_argument("--slices", type=int, default=300)
    parser.add_argument("--fps", type=float, default=20.0)
    parser.add_argument("--cache-mb", type=int, nargs="+", default=[256, 64])
    parser.add_argument("--volume-mb", type=int, default=512)
    parser.add_argument("--only", choices=["mpr"], help="run only these figures")
    args = parser.parse_args()
    import warnings

    warnings.simplefilter("ignore")
    import os

    # Timings are wall-clock on the kernel's thread: a busy machine shows up in them.
    cores = os.cpu_count()
    load = ", ".join(f"{v:.1f}" for v in os.getloadavg())
    print(f"{cores} cores, load average {load} (figures scale with load; ratios less so)")
    meter = MessageMeter()
    if args.only == "mpr":
        bench_mpr(args.slices, args.redraws, args.volume_mb)
        return
    bench_redraw("CT (Philips, series of 28)", CT_SERIES, meter, args.redraws)
    bench_redraw("CR (Fuji RG2, JPEG lossless)", CR_FILE, meter, max(args.redraws // 2, 20))
    for cache_mb in args.cache_mb:
        bench_scroll(args.slices, args.fps, cache_mb)
    bench_mpr(args.slices, args.redraws, args.volume_mb)


if __name__ == "__main__":
    main()
