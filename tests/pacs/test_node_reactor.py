"""An association's DUL reactor waits for work (``node/reactor.py``): it does not spin while
the association is idle, it sends what is queued at once rather than at its next look, and
it leaves no descriptor behind once the association ends."""

from __future__ import annotations

import os
import time

import pytest
from pynetdicom import AE, evt
from pynetdicom.sop_class import Verification

from tests.pacs.node_support import NODE_AET, start_node
from workbench.pacs.node import reactor
from workbench.pacs.node.contexts import tune_association

IDLE_SECONDS = 0.5


@pytest.fixture(scope="module")
def node(tmp_path_factory):
    running = start_node(tmp_path_factory.mktemp("reactor"))
    yield running
    running.node.stop()


def _associate(node):
    ae = AE(ae_title="CLIENT")
    ae.dimse_timeout = 5
    ae.acse_timeout = 5
    ae.add_requested_context(Verification)
    assoc = ae.associate(
        "127.0.0.1",
        node.port,
        ae_title=NODE_AET,
        evt_handlers=[(evt.EVT_CONN_OPEN, tune_association)],
    )
    assert assoc.is_established
    return assoc


class _CountingTimer:
    """Stands for a DUL's ARTIM timer, counting the turns of the loop that reads it."""

    def __init__(self, timer) -> None:
        self.timer = timer
        self.turns = 0

    @property
    def expired(self) -> bool:
        self.turns += 1
        return self.timer.expired

    def __getattr__(self, name: str):
        return getattr(self.timer, name)


def _acceptor_of(node, assoc):
    """The node's side of the client association ``assoc``."""
    port = assoc.dul.socket.socket.getsockname()[1]
    for candidate in node.node.ae.active_associations:
        if candidate.is_acceptor and candidate.requestor.port == port:
            return candidate
    raise AssertionError("the node has no association for this client")


def test_an_idle_association_does_not_poll(node):
    assoc = _associate(node)
    try:
        assert assoc.send_c_echo().Status == 0x0000
        ends = [assoc.dul, _acceptor_of(node, assoc).dul]
        counters = [_CountingTimer(dul.artim_timer) for dul in ends]
        for dul, counter in zip(ends, counters, strict=True):
            dul.artim_timer = counter
        time.sleep(IDLE_SECONDS)  # the idle period being measured
        for dul, counter in zip(ends, counters, strict=True):
            dul.artim_timer = counter.timer
    finally:
        assoc.release()
    # Waiting, a loop turns at most once per LONGEST_WAIT (100 turns here); polling with
    # pynetdicom's delay, or the 0.2 ms one, it turned thousands of times.
    ceiling = 2 * IDLE_SECONDS / reactor.LONGEST_WAIT
    turns = [counter.turns for counter in counters]
    assert all(0 < count <= ceiling for count in turns), (
        f"an idle association's reactors turned {turns} times in {IDLE_SECONDS} s"
    )


def test_what_is_queued_is_sent_without_waiting_for_the_next_look(node, monkeypatch):
    # With the longest wait far beyond the DIMSE timeout, every response (queued by the
    # node's handler thread) and the release (queued by this thread) must wake the reactor.
    monkeypatch.setattr(reactor, "LONGEST_WAIT", 60.0)
    assoc = _associate(node)
    started = time.monotonic()
    try:
        statuses = [assoc.send_c_echo().Status for _ in range(20)]
    finally:
        assoc.release()
    assert statuses == [0x0000] * 20
    assert assoc.is_released
    assert time.monotonic() - started < 30, "a queued primitive waited for the longest wait"


def test_associations_leave_no_descriptor_behind(node):
    def descriptors() -> int:
        return len(os.listdir("/proc/self/fd"))

    if not os.path.isdir("/proc/self/fd"):
        pytest.skip("needs /proc to count descriptors")
    _associate(node).release()  # anything opened once per process is open now
    before = descriptors()
    for _ in range(20):
        assoc = _associate(node)
        assert assoc.send_c_echo().Status == 0x0000
        assoc.release()
    deadline = time.monotonic() + 10
    while descriptors() > before + 2 and time.monotonic() < deadline:
        time.sleep(0.05)  # the node's side closes its socket once its reactor sees the end
    assert descriptors() <= before + 2, "associations left wake-up sockets open"
