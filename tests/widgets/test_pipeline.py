"""Frame pacing: few frames in flight, the latest state next, the exact frame once input pauses.

The pipeline runs on a real asyncio loop, as in a kernel; the browser's receipts are given
by the test.
"""

from __future__ import annotations

import asyncio
import time

from workbench.widgets.pipeline import RESTAMP_SECONDS, RESTAMPS, FramePipeline, Throttle


class Frames:
    """Records what the pipeline draws: ``(exact, frame_id)`` in order."""

    def __init__(self) -> None:
        self.drawn: list[tuple[bool, int]] = []

    def __call__(self, exact: bool, frame_id: int) -> None:
        self.drawn.append((exact, frame_id))


def confirmed(frames: Frames, **options) -> FramePipeline:
    """A pipeline whose first frame the browser has confirmed: from now on it is paced."""
    pipeline = FramePipeline(frames, **options)
    pipeline.request()
    pipeline.acknowledged(1)
    return pipeline


async def until(condition, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "the pipeline did not get there"
        await asyncio.sleep(0.005)


def test_without_a_browser_every_change_is_drawn_exactly_at_once() -> None:
    frames = Frames()
    pipeline = FramePipeline(frames)  # no loop, no receipts: a plain script
    for _ in range(5):
        pipeline.request()
    assert frames.drawn == [(True, 1), (True, 2), (True, 3), (True, 4), (True, 5)]


def test_changes_during_a_frame_in_flight_become_one_frame() -> None:
    async def scenario() -> None:
        frames = Frames()
        pipeline = confirmed(frames, settle_seconds=0.05, max_in_flight=1)
        await asyncio.sleep(0.06)
        pipeline.request()  # a first move, well after the last change: exact
        assert frames.drawn[-1] == (True, 2) and pipeline.in_flight
        for _ in range(10):  # the drag goes on while frame 2 is in flight
            pipeline.request()
        assert len(frames.drawn) == 2, "nothing may be sent while a frame is in flight"
        pipeline.acknowledged(2)
        assert frames.drawn[-1] == (False, 3), "the latest state, as a cheaper frame"
        pipeline.acknowledged(3)
        # No more input: the exact frame follows once the input has paused.
        await until(lambda: len(frames.drawn) == 4)
        assert frames.drawn[-1] == (True, 4)
        pipeline.acknowledged(4)
        await asyncio.sleep(0.15)  # nothing changed: nothing more is drawn
        assert len(frames.drawn) == 4
        pipeline.close()

    asyncio.run(scenario())


def test_two_frames_in_flight_and_a_receipt_confirms_every_earlier_frame() -> None:
    async def scenario() -> None:
        frames = Frames()
        pipeline = confirmed(frames, settle_seconds=10.0, ack_timeout_seconds=10.0, max_in_flight=2)
        for _ in range(6):  # a drag
            pipeline.request()
        assert frames.drawn[1:] == [(False, 2), (False, 3)], "a second frame may be in flight"
        pipeline.acknowledged(3)  # drawn in order: frame 2 was drawn too
        assert frames.drawn[-1] == (False, 4) and len(frames.drawn) == 4
        pipeline.request()
        pipeline.acknowledged(2)  # a stale receipt frees nothing
        assert len(frames.drawn) == 5 and frames.drawn[-1] == (False, 5)
        pipeline.request()
        assert len(frames.drawn) == 5, "two in flight: the latest state waits"
        pipeline.close()

    asyncio.run(scenario())


def test_release_sends_the_exact_frame_without_waiting() -> None:
    async def scenario() -> None:
        frames = Frames()
        pipeline = confirmed(frames, settle_seconds=10.0, max_in_flight=1)
        pipeline.request()
        pipeline.acknowledged(2)
        pipeline.request()  # continuous: a preview
        assert frames.drawn[-1] == (False, 3)
        pipeline.request()  # waits for frame 3's receipt
        pipeline.settle()  # the button went up while frame 3 is in flight
        assert frames.drawn[-1] == (True, 4), "the exact frame goes out at once"
        pipeline.acknowledged(3)
        pipeline.acknowledged(4)
        pipeline.settle()  # nothing changed since: nothing more to send
        assert len(frames.drawn) == 4
        pipeline.close()

    asyncio.run(scenario())


def test_the_changes_of_a_release_go_out_once_as_the_exact_frame() -> None:
    async def scenario() -> None:
        frames = Frames()
        pipeline = confirmed(frames, settle_seconds=10.0)
        pipeline.request()
        pipeline.request()  # a drag: cheaper frames, room for more in flight
        assert frames.drawn[-1] == (False, 3)
        with pipeline.settling():  # the release moves the view to where the button went up
            pipeline.request()
            assert len(frames.drawn) == 3, "no cheaper frame for the release's own change"
        assert frames.drawn[3:] == [(True, 4)]
        with pipeline.settling():  # a release that changes nothing, the exact frame shown
            pass
        assert len(frames.drawn) == 4
        pipeline.close()

    asyncio.run(scenario())


def test_a_frame_never_confirmed_stops_blocking_after_the_timeout() -> None:
    async def scenario() -> None:
        frames = Frames()
        pipeline = confirmed(frames, settle_seconds=0.01, ack_timeout_seconds=0.1, max_in_flight=1)
        await asyncio.sleep(0.02)
        pipeline.request()
        await asyncio.sleep(0.02)
        pipeline.request()  # frame 2 is never confirmed (say, the tab was closed)
        assert len(frames.drawn) == 2
        await until(lambda: len(frames.drawn) == 3)
        assert frames.drawn[-1] == (True, 3)
        pipeline.close()

    asyncio.run(scenario())


def test_coalesce_off_draws_every_change_exactly() -> None:
    async def scenario() -> None:
        frames = Frames()
        pipeline = confirmed(frames)
        pipeline.coalesce = False
        for _ in range(4):
            pipeline.request()
        assert frames.drawn == [(True, i) for i in range(1, 6)]

    asyncio.run(scenario())


def test_throttle_keeps_the_last_call() -> None:
    async def scenario() -> None:
        calls: list[int] = []
        throttle = Throttle(0.05, calls.append)
        for i in range(10):
            throttle(i)
        assert calls == [0], "the first call runs at once, the rest wait"
        await until(lambda: len(calls) == 2)
        assert calls == [0, 9]

    asyncio.run(scenario())


async def exact_frame_two(frames: Frames, stamps: list[int]) -> FramePipeline:
    """A pipeline restamping into ``stamps`` whose frame 1 a browser confirmed, and frame 2
    sent exact after a pause."""
    pipeline = FramePipeline(frames, settle_seconds=0.01, restamp=stamps.append)
    pipeline.request()
    pipeline.acknowledged(1)  # a browser confirms frames
    await asyncio.sleep(0.02)
    pipeline.request()  # after a pause: exact at once
    return pipeline


def test_an_exact_frame_left_unconfirmed_is_stamped_again_until_confirmed() -> None:
    async def scenario() -> None:
        frames, stamps = Frames(), []
        pipeline = await exact_frame_two(frames, stamps)
        assert frames.drawn[-1] == (True, 2)
        await until(lambda: stamps == [2])  # its report did not come: asked for again
        pipeline.acknowledged(2)
        await asyncio.sleep(3 * RESTAMP_SECONDS)
        assert stamps == [2], "a confirmed frame is not stamped again"
        pipeline.close()

    asyncio.run(scenario())


def test_restamps_stop_after_a_few_tries_and_for_a_frame_followed_by_another() -> None:
    async def scenario() -> None:
        frames, stamps = Frames(), []
        pipeline = await exact_frame_two(frames, stamps)  # never confirmed (a closed tab)
        await asyncio.sleep((RESTAMPS + 1.5) * RESTAMP_SECONDS)
        assert stamps == [2] * RESTAMPS
        pipeline.request()  # frame 3, exact, followed by frame 4 before its check
        await asyncio.sleep(0.02)
        pipeline.request()
        assert frames.drawn[-2:] == [(True, 3), (True, 4)]
        await asyncio.sleep(1.5 * RESTAMP_SECONDS)
        assert stamps[RESTAMPS:] == [4], "only the frame shown last is stamped again"
        pipeline.close()

    asyncio.run(scenario())


def test_the_last_exact_frame_is_stamped_again_after_late_receipts_cleared_the_others() -> None:
    # Late receipts make the pipeline forget the frames in flight; the exact frame of the
    # release was among them, and its own report was lost: it must still be asked for again.
    async def scenario() -> None:
        frames, stamps = Frames(), []
        pipeline = confirmed(frames, max_in_flight=2, ack_timeout_seconds=0.01,
                             restamp=stamps.append)  # fmt: skip
        pipeline.request()
        pipeline.request()  # a drag: two frames in flight, the most it sends
        pipeline.settle()  # the release: the exact frame goes at once
        last = frames.drawn[-1][1]
        assert frames.drawn[-1][0] and len(frames.drawn) == 4
        await asyncio.sleep(0.02)
        pipeline.acknowledged(2)  # late: the frames still in flight are given up
        await until(lambda: stamps == [last])
        pipeline.acknowledged(last)
        await asyncio.sleep(2 * RESTAMP_SECONDS)
        assert stamps == [last]
        pipeline.close()

    asyncio.run(scenario())
