"""Cine on a real CT series, in a real asyncio event loop (as a Jupyter kernel runs one)."""

from __future__ import annotations

import asyncio

import pytest

from workbench.widgets.cine import Cine
from workbench.widgets.model import ViewerModel


@pytest.fixture()
def model(ct_stack, cache) -> ViewerModel:
    return ViewerModel([ct_stack], cache=cache, viewport_size=(256, 256))


def play_for(cine: Cine, seconds: float, until=None) -> None:
    async def run() -> None:
        assert cine.start()
        deadline = asyncio.get_running_loop().time() + seconds
        while asyncio.get_running_loop().time() < deadline and not (until and until()):
            await asyncio.sleep(0.01)
        cine.stop()

    asyncio.run(run())


def test_cine_starts_at_the_frame_on_screen_and_stops_where_it_is(model) -> None:
    viewport = model.viewports[0]
    viewport.frame = 20
    shown: list[int] = []
    viewport.on_change(lambda c: shown.append(c.new), names=("frame",))
    cine = Cine(model, fps=30)
    play_for(cine, 10.0, until=lambda: len(shown) >= 12)
    # 21, 22, ... 27, then round to the first frame and on.
    assert shown[:10] == [21, 22, 23, 24, 25, 26, 27, 0, 1, 2]
    assert not cine.playing
    assert viewport.frame == shown[-1]  # stopping leaves the last frame on screen


def test_measured_rate_follows_what_is_really_shown(model) -> None:
    cine = Cine(model, fps=20)
    rates: list[float] = []
    cine.on_change(lambda c: rates.append(c.new), names=("measured_fps",))
    play_for(cine, 1.5)
    measured = [r for r in rates if r is not None]
    assert measured, "no rate was measured"
    # Frames are decoded and windowed on each step; at 20 fps asked the rate is at most that.
    assert 0 < measured[-1] <= 21


def test_cine_needs_frames_and_an_event_loop(model, sample_data, cache) -> None:
    from workbench.io import open_series

    single = ViewerModel([open_series(sample_data / "nema_ct1_ge")], cache=cache)
    assert not Cine(single).start()
    with pytest.raises(RuntimeError, match="event loop"):
        Cine(model).start()
    with pytest.raises(ValueError, match="fps"):
        Cine(model, fps=0)


def test_a_new_stack_or_layout_stops_the_cine(model, sample_data) -> None:
    from workbench.io import open_series

    mr = open_series(sample_data / "series_mr_siemens_t1_sag_HFS")
    cine = Cine(model, fps=10)

    async def run() -> None:
        assert cine.start()
        model.show(mr)
        assert not cine.playing
        assert cine.start()
        model.layout = (1, 2)
        assert cine.playing  # the played viewport is still on screen
        model.active = 1
        model.layout = (1, 1)
        assert cine.playing
        cine.stop()

    asyncio.run(run())
