"""A response always reaches the send waiting for it, however the threads are scheduled.

pynetdicom pauses an association's reactor before ``send_c_store()`` sends, but the pause is
not atomic: a reactor that has just passed its checkpoint when the send begins looks at the
message queue later, and if it looks between the response's arrival and the send's wake-up
it takes the response and drops it. Under load about one C-STORE in a few thousand waited
out its DIMSE timeout that way, although the instance was stored. Here the reactor is held
just after its checkpoint until the response is queued, and looks before the send wakes.
"""

from __future__ import annotations

import queue
import threading

import pydicom
import pytest
from pydicom.uid import generate_uid
from pynetdicom import AE, evt
from pynetdicom.sop_class import MRImageStorage

from tests.pacs.node_support import NODE_AET, start_node
from tests.reliability.support import TEMPLATE
from workbench.pacs.node.contexts import tune_association


class _Interleaving:
    """Stages, on one association, the reactor looking at a response before the send wakes."""

    def __init__(self, assoc) -> None:
        self.holding = threading.Event()
        self.queued = threading.Event()
        self.looked = threading.Event()
        self.staged = 0
        stage = self

        class Checkpoint(threading.Event):
            def wait(self, timeout: float | None = None) -> bool:
                passed = super().wait(timeout)
                if passed:  # held where the pause cannot see it, until a message arrives
                    stage.holding.set()
                    stage.queued.wait(1)
                    stage.queued.clear()
                    stage.holding.clear()
                return passed

        class Messages(queue.Queue):
            """Wakes the waiting send only once the held reactor has looked at the queue."""

            def put(self, item, block: bool = True, timeout: float | None = None) -> None:
                with self.mutex:
                    self._put(item)
                stage.looked.clear()
                stage.queued.set()
                if stage.looked.wait(1):
                    stage.staged += 1
                else:  # the reactor was not held: nothing staged this time
                    stage.queued.clear()
                with self.not_empty:
                    self.not_empty.notify()

        checkpoint = Checkpoint()
        checkpoint.set()
        assoc._reactor_checkpoint = checkpoint
        assoc.dimse.msg_queue = Messages()
        get_msg = assoc.dimse.get_msg

        def spied_get_msg(block: bool = False) -> tuple:
            try:
                return get_msg(block)
            finally:
                if not block:
                    self.looked.set()

        assoc.dimse.get_msg = spied_get_msg


@pytest.fixture(scope="module")
def node(tmp_path_factory, database):
    running = start_node(tmp_path_factory.mktemp("responses"), DatabaseUrl=database.new_url())
    yield running
    running.node.stop()


def test_c_store_response_is_not_taken_by_the_reactor(node):
    ae = AE(ae_title="CLIENT")
    ae.dimse_timeout = 5
    ae.add_requested_context(MRImageStorage)
    assoc = ae.associate(
        "127.0.0.1",
        node.port,
        ae_title=NODE_AET,
        evt_handlers=[(evt.EVT_CONN_OPEN, tune_association)],
    )
    assert assoc.is_established
    interleaving = _Interleaving(assoc)
    ds = pydicom.dcmread(TEMPLATE)
    try:
        for _ in range(3):
            ds.SOPInstanceUID = generate_uid()
            ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
            interleaving.holding.wait(1)
            status = assoc.send_c_store(ds)
            assert status.get("Status") == 0x0000, "the C-STORE response never reached the send"
    finally:
        if assoc.is_established:
            assoc.release()
    assert interleaving.staged, "the interleaving was never staged; the test proves nothing"
