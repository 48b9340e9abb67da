"""What a user sees in JupyterLab: input-to-pixels latency and frame rate of the viewer.

In a real JupyterLab driven by headless Chromium (the browser tests' harness), on a 512² CT
from ``data/sample`` and on a real chest CT (NEMA CT1, from ``../shared/data`` when present,
else its vendored copy), measures:

* input→pixels latency of single W/L moves and single wheel notches (p50/p95; a notch
  scrolls a frame, or zooms with Ctrl held on a single-frame image): from the browser's
  input event to the canvas showing new pixels;
* new images per second on screen during a 2 s W/L drag with a move every 16 ms, each drag
  starting from a reading window (:data:`START_WINDOWS`);
* time from mouse-up to the exact final frame (the last image drawn, checked against
  :func:`workbench.io.display.render` of the final window);
* bytes per update sent while dragging, and the page's websocket messages (both ways) per
  image drawn: what the page, the Jupyter server and the kernel each handle.

Each figure is measured twice in the same run, on the same page: with frames paced by
:class:`workbench.widgets.pipeline.FramePipeline` (a few in flight, the latest state next,
JPEG while input keeps coming, the exact PNG once it pauses or the button is released), and
with pacing switched off (``coalesce = False``: one lossless PNG per event, every event
drawn, as the viewer did before), and the ratio is printed.

The page timestamps every image drawn into the image layer and every input event with
``performance.now()``, so latencies are browser-side and include the whole round trip. Run:
``.venv/bin/python benchmarks/bench_viewer_browser.py`` (about five minutes; ``--help`` lists
the options).
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import statistics
import sys
import tempfile
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
SHARED = REPO.parent / "shared" / "data"
SAMPLE = REPO / "data" / "sample"
DATASETS = {
    "512² CT (data/sample, Philips head phantom)": SAMPLE / "series_ct_philips_ingenuity_5mm",
    "chest CT (NEMA CT1, GE)": (
        SHARED / "nema_ct1_ge" / "CT1_JLSN.dcm"
        if (SHARED / "nema_ct1_ge").is_dir()
        else SAMPLE / "nema_ct1_ge" / "CT1_JLSN.dcm"
    ),
}
#: The window (centre, width) each drag starts from: the phantom's own, a mediastinal window
#: for the chest CT (its default spans every value, a nearly flat image). Without a fresh
#: start every drag would widen the window further, until the frames were flat grey and far
#: cheaper than what a reader sees.
START_WINDOWS = {"512² CT (data/sample, Philips head phantom)": (40.0, 80.0),
                 "chest CT (NEMA CT1, GE)": (40.0, 400.0)}  # fmt: skip

#: Records every image drawn into the image layer (the only layer drawing decoded images:
#: ipycanvas draws our PNG/JPEG bytes with ``drawImage`` of an ``<img>``), and every input
#: event, both with ``performance.now()`` when the page handles them. Nothing more per draw:
#: reading the layer back (``getImageData``) would add a few ms of the page's time to
#: every frame. Counts the messages of the page's websockets, both ways: each costs the
#: page, the Jupyter server and the kernel, whatever it carries.
INSTRUMENT_JS = """
window.__wb = {draws: [], inputs: [], layer: null, messages: 0};
window.WebSocket = class extends window.WebSocket {
  constructor(...args) {
    super(...args);
    this.addEventListener('message', () => { window.__wb.messages += 1; });
  }
  send(data) {
    window.__wb.messages += 1;
    return super.send(data);
  }
};
const drawImage = CanvasRenderingContext2D.prototype.drawImage;
CanvasRenderingContext2D.prototype.drawImage = function (...args) {
  const result = drawImage.apply(this, args);
  if (args[0] instanceof HTMLImageElement) {
    window.__wb.layer = this.canvas;
    window.__wb.draws.push({t: performance.now()});
  }
  return result;
};
for (const type of ["mousemove", "mousedown", "mouseup", "wheel"]) {
  document.addEventListener(
    type, () => window.__wb.inputs.push({type: type, t: performance.now()}), true);
}
"""

#: The image layer's pixels (grey levels) as base64.
PIXELS_JS = """() => {
  const c = window.__wb.layer;
  const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
  const grey = new Uint8Array(c.width * c.height);
  for (let i = 0; i < grey.length; i++) grey[i] = d[4 * i];
  let s = ''; for (let i = 0; i < grey.length; i++) s += String.fromCharCode(grey[i]);
  return [c.width, c.height, btoa(s)];
}"""


def notebook_cells(source: Path, start_window: tuple[float, float]) -> list[str]:
    return [
        "import json\nimport ipywidgets as widgets\nfrom workbench.widgets import Viewer",
        # One 512×512 viewport: one screen pixel per image pixel.
        f"viewer = Viewer({str(source)!r}, size=(518, 542), thumbnails=False)\n"
        "view = viewer.views[0]\nviewer",
        "report = widgets.HTML()\nreport.add_class('bench-report')\n"
        "ask = widgets.Button(description='report')\nask.add_class('bench-ask')\n"
        "start = widgets.Button(description='start')\nstart.add_class('bench-start')\n"
        "paced = widgets.ToggleButton(value=True, description='paced')\n"
        "paced.add_class('bench-paced')\n"
        "asked = [0]\n"
        "def show(_=None):\n"
        "    asked[0] += 1\n"
        "    v = viewer.viewports[0]\n"
        "    report.value = json.dumps({'n': asked[0], 'window': v.effective_window(),\n"
        "        'frames': v.frame_count,\n"
        "        'frame': v.frame, 'bytes': view.bytes_sent, 'sent': view.frames.sent,\n"
        "        'previews': view.frames.previews, 'paced': view.frames.coalesce})\n"
        "def set_paced(change):\n"
        "    view.frames.coalesce = change['new']\n"
        "    show()\n"
        "ask.on_click(show)\n"
        "def restart(_):\n"
        f"    viewer.viewports[0].window = {tuple(start_window)!r}\n"
        "    show()\n"
        "start.on_click(restart)\n"
        "paced.observe(set_paced, 'value')\n"
        "show()\n"
        "widgets.HBox([ask, start, paced, report])",
    ]


class Page:
    """The notebook page of one data set, with the helpers the measurements need."""

    def __init__(self, page, canvas) -> None:
        self.page = page
        self.canvas = canvas

    def origin(self) -> tuple[float, float]:
        """The canvas's top left on the page now (clicking the report button may scroll)."""
        self.canvas.scroll_into_view_if_needed()
        box = self.canvas.bounding_box()
        return box["x"], box["y"]

    def report(self, button: str = ".bench-ask") -> dict:
        """The kernel's figures, once ``button`` (asking for them, or restarting the
        window) has been handled."""
        before = json.loads(self.page.locator(".bench-report").inner_text())["n"]
        self.page.locator(button).click()
        self.page.wait_for_function(
            "n => JSON.parse(document.querySelector('.bench-report').textContent).n > n",
            arg=before,
        )
        return json.loads(self.page.locator(".bench-report").inner_text())

    def set_paced(self, paced: bool) -> None:
        if self.report()["paced"] != paced:
            self.page.locator(".bench-paced").click()
            self.page.wait_for_function(
                "p => JSON.parse(document.querySelector('.bench-report').textContent).paced === p",
                arg=paced,
            )

    def draws(self) -> list[dict]:
        return self.page.evaluate("() => window.__wb.draws")

    def messages(self) -> int:
        """Websocket messages the page has sent and received so far."""
        return self.page.evaluate("() => window.__wb.messages")

    def draw_count(self) -> int:
        return self.page.evaluate("() => window.__wb.draws.length")

    def last_input(self, kind: str) -> float:
        return self.page.evaluate(
            "k => window.__wb.inputs.filter(e => e.type === k).slice(-1)[0].t", kind
        )

    def wait_for_draw(self, count: int) -> dict:
        self.page.wait_for_function("n => window.__wb.draws.length > n", arg=count)
        return self.page.evaluate("n => window.__wb.draws[n]", count)

    def wait_until_quiet(self, seconds: float = 0.6) -> None:
        """Until no repaint came for ``seconds`` (all queued frames drawn)."""
        self.page.wait_for_function(
            "s => { const d = window.__wb.draws;"
            " return performance.now() - (d.length ? d[d.length - 1].t : 0) > s * 1000; }",
            arg=seconds,
            polling=50,
            timeout=120_000,
        )

    def pixels(self) -> np.ndarray:
        width, height, data = self.page.evaluate(PIXELS_JS)
        return np.frombuffer(base64.b64decode(data), np.uint8).reshape(height, width)


def percentiles(samples: list[float]) -> tuple[float, float]:
    ordered = sorted(samples)
    return statistics.median(ordered), ordered[round(0.95 * (len(ordered) - 1))]


def single_moves(page: Page, count: int) -> list[float]:
    """Latency of isolated W/L moves (button held, one move at a time)."""
    x0, y0 = page.origin()
    x, y = x0 + 256, y0 + 256
    page.page.mouse.move(x, y)
    page.page.mouse.down()
    page.wait_until_quiet(0.4)
    latencies = []
    for i in range(count):
        seen = page.draw_count()
        step = 3 if i % 2 == 0 else -3
        x += step
        page.page.mouse.move(x, y + (i % 2))
        draw = page.wait_for_draw(seen)
        latencies.append(draw["t"] - page.last_input("mousemove"))
        page.wait_until_quiet(0.3)  # the next move is a new, isolated event
    page.page.mouse.up()
    page.wait_until_quiet(0.4)
    return latencies


def wheel_notches(page: Page, count: int) -> list[float]:
    """Latency of isolated wheel notches: scrolling frames, or zooming (Ctrl) a single frame."""
    zoom = page.report()["frames"] == 1
    x0, y0 = page.origin()
    page.page.mouse.move(x0 + 200, y0 + 200)
    if zoom:
        page.page.keyboard.down("Control")
    latencies = []
    for i in range(count):
        seen = page.draw_count()
        page.page.mouse.wheel(0, 100 if i % 2 == 0 else -100)
        draw = page.wait_for_draw(seen)
        latencies.append(draw["t"] - page.last_input("wheel"))
        page.wait_until_quiet(0.3)
    if zoom:
        page.page.keyboard.up("Control")
    return latencies


#: A W/L drag driven by the page's own timer: a move every ``interval`` ms, like a mouse
#: (driving each move over the DevTools protocol from here would pace them by its round trip).
#: Returns the page times of the press and the release.
DRAG_JS = """async ([x, y, steps, interval]) => {
  const target = document.elementFromPoint(x, y);
  const fire = (type, cx, cy, buttons) => target.dispatchEvent(new MouseEvent(type, {
    bubbles: true, cancelable: true, view: window, clientX: cx, clientY: cy, button: 0, buttons}));
  fire('mousedown', x, y, 1);
  const down = performance.now();
  let cx = x, cy = y;
  for (let i = 1; i <= steps; i++) {
    // Back and forth, so the window stays in a useful range however long the drag.
    const phase = Math.floor(i / 100) % 2 === 0 ? i % 100 : 100 - i % 100;
    cx = x + 2 * phase; cy = y + phase;
    fire('mousemove', cx, cy, 1);
    await new Promise(r => setTimeout(r, Math.max(0, down + i * interval - performance.now())));
  }
  fire('mouseup', cx, cy, 0);
  return [down, performance.now()];
}"""


def drag(page: Page, seconds: float, interval: float) -> dict:
    """A W/L drag with a move every ``interval`` s, from the data set's start window; what
    reached the screen, and when."""
    seen, prior = page.draw_count(), page.report()
    before = page.report(".bench-start")
    if before["sent"] > prior["sent"]:  # the window changed: its frame is on its way
        page.wait_for_draw(seen)
    x0, y0 = page.origin()
    page.page.mouse.move(x0 + 150, y0 + 150)
    page.wait_until_quiet(0.3)
    messages = page.messages()
    down, up = page.page.evaluate(
        DRAG_JS, [x0 + 150, y0 + 150, int(seconds / interval), interval * 1000]
    )
    page.wait_until_quiet(1.0)
    messages = page.messages() - messages
    after = page.report()
    draws = page.draws()
    during = [d for d in draws if down <= d["t"] <= up]
    drawn = [d for d in draws if d["t"] >= down]
    final = draws[-1]
    sent = after["sent"] - before["sent"]
    return {
        "updates_per_s": len(during) / ((up - down) / 1000),
        "final_after_up_ms": max(final["t"] - up, 0.0),
        "bytes_per_update": (after["bytes"] - before["bytes"]) / max(sent, 1),
        "messages_per_image": messages / max(len(drawn), 1),
        "frames_sent": sent,
        "previews": after["previews"] - before["previews"],
        "window": after["window"],
        "frame": after["frame"],
        "seconds": (up - down) / 1000,
    }


def exact_difference(page: Page, source: Path, window, frame: int) -> int:
    """Largest grey-level difference between the settled canvas and ``display.render``."""
    from workbench.io import display, open_series

    stack = open_series(source)
    expected = display.render(stack[frame].values, stack.attrs, window=tuple(window))
    shown = page.pixels()
    return int(np.abs(shown.astype(int) - expected.astype(int)).max())


def measure(page: Page, source: Path, paced: bool, args) -> dict:
    page.set_paced(paced)
    figures = {}
    figures["move"] = percentiles(single_moves(page, args.events))
    figures["wheel"] = percentiles(wheel_notches(page, args.events))
    drags = [drag(page, args.drag_seconds, args.interval) for _ in range(args.drags)]
    figures["drag"] = {
        key: statistics.median(d[key] for d in drags)
        for key in ("updates_per_s", "final_after_up_ms", "bytes_per_update",
                    "messages_per_image")
    }  # fmt: skip
    last = drags[-1]
    figures["drag"]["exact_max_diff"] = exact_difference(page, source, last["window"],
                                                         last["frame"])  # fmt: skip
    figures["drag"]["previews"] = f"{last['previews']}/{last['frames_sent']}"
    return figures


def print_figures(label: str, paced: dict, plain: dict) -> None:
    print(f"\n{label}")
    print(f"  {'':34s}{'paced':>14s}{'every event':>16s}{'ratio':>9s}")
    for name, key in (("single W/L move", "move"), ("single wheel notch", "wheel")):
        (p50, p95), (b50, b95) = paced[key], plain[key]
        print(f"  {name + ' p50 / p95 (ms)':34s}{p50:7.0f} /{p95:5.0f}{b50:9.0f} /{b95:5.0f}"
              f"{b50 / p50:8.2f}×")  # fmt: skip
    d, b = paced["drag"], plain["drag"]
    rows = (
        ("drag: new images per second", "updates_per_s", "{:14.1f}", d["updates_per_s"]
         / max(b["updates_per_s"], 1e-9)),
        ("drag: mouse-up → exact frame (ms)", "final_after_up_ms", "{:14.0f}",
         b["final_after_up_ms"] / max(d["final_after_up_ms"], 1e-9)),
        ("drag: kB per update", "bytes_per_update", "{:14.1f}",
         b["bytes_per_update"] / max(d["bytes_per_update"], 1e-9)),
        ("drag: websocket messages per image", "messages_per_image", "{:14.1f}",
         b["messages_per_image"] / max(d["messages_per_image"], 1e-9)),
    )  # fmt: skip
    for name, key, fmt, ratio in rows:
        scale = 1 / 1024 if key == "bytes_per_update" else 1
        print(f"  {name:34s}{fmt.format(d[key] * scale)}{fmt.format(b[key] * scale)[2:]:>16s}"
              f"{ratio:8.2f}×")  # fmt: skip
    print(f"  settled canvas vs display.render: max difference {d['exact_max_diff']} (paced), "
          f"{b['exact_max_diff']} (every event); previews/frames in the last paced drag "
          f"{d['previews']}")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--events", type=int, default=20, help="single moves and notches")
    parser.add_argument("--drags", type=int, default=3, help="drags per mode")
    parser.add_argument("--drag-seconds", type=float, default=2.0)
    parser.add_argument("--interval", type=float, default=0.016, help="seconds between moves")
    args = parser.parse_args()

    from playwright.sync_api import sync_playwright

    from tests.browser.conftest import new_page, open_and_run, running_jupyter_lab, wait_for_viewer
    from tests.conftest import CHROMIUM_ARGS
    from tests.peers import require_tool

    load = ", ".join(f"{v:.1f}" for v in os.getloadavg())
    print(f"{os.cpu_count()} cores, load average {load}; JupyterLab and Chromium on this machine")
    with (
        tempfile.TemporaryDirectory() as tmp,
        running_jupyter_lab(Path(tmp)) as lab,
        sync_playwright() as playwright,
    ):
        browser = playwright.chromium.launch(
            executable_path=require_tool("chromium"), headless=True, args=CHROMIUM_ARGS
        )
        for number, (label, source) in enumerate(DATASETS.items()):
            page = new_page(browser)
            page.add_init_script(INSTRUMENT_JS)
            cells = notebook_cells(source, START_WINDOWS[label])
            open_and_run(page, lab, f"bench{number}.ipynb", cells, Path(tmp))
            canvas = wait_for_viewer(page)
            bench = Page(page, canvas)
            x0, y0 = bench.origin()
            page.mouse.move(x0 + 100, y0 + 100)  # warm up
            page.mouse.down()
            page.mouse.move(x0 + 120, y0 + 110)
            page.mouse.up()
            bench.wait_until_quiet(0.5)
            paced = measure(bench, source, True, args)
            plain = measure(bench, source, False, args)
            print_figures(label, paced, plain)
            page.context.close()
        browser.close()


if __name__ == "__main__":
    main()
