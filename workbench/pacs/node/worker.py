"""A DICOM worker process (``python -m workbench.pacs.node.worker FD SLOT LOGLEVEL``, started
by :mod:`.pool`): a full DIMSE node on the server's index and storage serving the
associations the server hands it over the socket ``FD``; its configuration comes as JSON on
standard input."""

from __future__ import annotations

import json
import logging
import os
import signal
import socket
import sys
import threading
from typing import Any

from pydicom.dataset import Dataset

from ..config import Config
from ..heap import freeze_startup_objects
from ..index import Index
from .channel import Channel
from .commitment import Reports
from .dicom_node import DicomNode, receive_on_storage

LOGGER = logging.getLogger("workbench.pacs.node")


class RelayedReports(Reports):
    """Storage commitment reports arriving here belong to requests the server process made:
    each goes to it, where the request waits for it."""

    def __init__(self, channel: Channel) -> None:
        super().__init__()
        self._channel = channel

    def receive(self, transaction_uid: str, information: Dataset) -> bool:
        self._channel.send({"report": transaction_uid, "information": information.to_json_dict()})
        return True  # the server process logs one it did not ask for


def run(channel: Channel, config: Config) -> None:
    """Serve handed associations until told to stop or the server process goes away."""
    stop = threading.Event()
    grace = [5.0]
    # Ctrl-C reaches the whole process group: the server process stops us in order.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    index = Index(config, reconcile=False)  # the server process reconciled the store
    receive_on_storage(index)
    node = DicomNode(index, config)
    node.commitment_reports = RelayedReports(channel)

    def closed() -> None:
        try:
            channel.send({"closed": 1})
        except OSError:
            stop.set()  # the server process is gone

    server = node.serve_handed((node.host, int(config.DicomPort)), closed)

    def listen() -> None:
        while True:
            message, connection = channel.receive()
            if message is None:
                break
            if connection is not None:
                # Creates the association and starts its thread; returns at once.
                server.process_request(connection, tuple(message["connection"]))
            elif "modalities" in message:
                config.DicomModalities = message["modalities"]
            elif "stop" in message:
                grace[0] = float(message["stop"])
                break
        stop.set()

    threading.Thread(target=listen, name="workbench-dicom-handed", daemon=True).start()
    freeze_startup_objects()
    channel.send({"ready": os.getpid()})
    while not stop.wait(1.0):
        pass
    node.stop(grace[0])
    index.close()


def main(argv: list[str] | None = None) -> int:
    fd, slot, level = (argv or sys.argv[1:])[:3]
    logging.basicConfig(level=int(level), format=f"%(asctime)s worker {slot} %(name)s "
                                                 "%(levelname)s: %(message)s")  # fmt: skip
    options: dict[str, Any] = json.loads(sys.stdin.read())
    channel = Channel(socket.socket(fileno=int(fd)))
    run(channel, Config.load(**options))
    return 0


if __name__ == "__main__":
    sys.exit(main())
