"""Headers of uploaded instances read in helper processes, beside the server's own.

Of what a STOW-RS request of small instances costs the server's process, reading the headers
is more than half: pydicom walks every element in Python, and the interpreter lock keeps
that on one core while the machine's others wait. Helper processes (``StowHeaderProcesses``)
read groups of parts while the server's process receives the next ones and reads some of
them itself, so that two cores work on one upload.

Small parts go to a helper whole (reading a header checks the pixel data's length against
the file's); a large one (a CT slice) is read by a helper from its file once written, as
copying it down a pipe would cost more than reading its header. A
helper is ``python -m workbench.pacs.header_helpers``, not a ``multiprocessing`` child: those
import the program's main module again, and a script that starts a server at its top level
would start a second one. Groups go down its standard input and headers come back up its
standard output, each a length-prefixed pickle (both ends are this module, in one version).
A helper starts with the server (``workbench serve``) or at the first upload large enough to
share; one that dies is replaced at the next upload, its parts read in the server's process.
"""

from __future__ import annotations

import contextlib
import itertools
import logging
import os
import pickle
import queue
import subprocess
import sys
import threading
from concurrent.futures import Future
from pathlib import Path
from typing import BinaryIO

from .errors import PacsError
from .heap import freeze_startup_objects
from .parsing import ParsedInstance, parse_instance

log = logging.getLogger(__name__)

#: Parts up to this size may be read by a helper; larger ones are read where they are.
MAX_PART_BYTES = 256 * 1024
#: Parts sent to a helper together (one round trip between the processes per group).
GROUP_SIZE = 8
#: Size asked for the pipe to each helper (Linux; 64 kB by default), so that the groups of
#: an upload's end fit in it at once.
PIPE_BYTES = 1024 * 1024

#: ``(bytes or path, label)`` of each part, as parse_instance takes them.
Items = list[tuple["bytes | Path", str]]
Results = list["ParsedInstance | PacsError"]


def parse_group(items: Items) -> Results:
    """Read each ``(bytes or path, label)`` as :func:`~workbench.pacs.parsing.parse_instance`
    does; a refused part gives its error in place of the header (it travels back as a
    value)."""
    results: Results = []
    for data, label in items:
        try:
            results.append(parse_instance(data, label))
        except PacsError as exc:
            results.append(exc)
    return results


class HelperGoneError(RuntimeError):
    """A helper process exited (or could not be written to) with groups still to read."""


def _send(stream: BinaryIO, message: object) -> None:
    payload = pickle.dumps(message, protocol=pickle.HIGHEST_PROTOCOL)
    stream.write(len(payload).to_bytes(8, "little"))
    stream.write(payload)
    stream.flush()


def _receive(stream: BinaryIO) -> object | None:
    """The next message, or ``None`` at the end of the stream."""
    size = stream.read(8)
    if len(size) < 8:
        return None
    payload = stream.read(int.from_bytes(size, "little"))
    return pickle.loads(payload)  # from our own helper process, never from the network


class _Helper:
    """One helper process, a thread writing the groups to it and one reading its answers."""

    def __init__(self) -> None:
        env = dict(os.environ)
        # The helper runs the code this process runs, wherever it was imported from.
        package_root = str(Path(__file__).resolve().parents[2])
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [package_root, env.get("PYTHONPATH")]))
        self.process = subprocess.Popen(
            [sys.executable, "-m", __name__], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
            env=env,
        )  # fmt: skip
        self.ready: Future = Future()  # set by the helper's first answer
        self._pending: dict[int, Future] = {0: self.ready}
        self._numbers = itertools.count(1)
        self._lock = threading.Lock()
        self._outbox: queue.SimpleQueue = queue.SimpleQueue()
        self._unsent = 0  # groups submitted and not yet written to the pipe
        self.all_sent = threading.Event()
        self.all_sent.set()
        with contextlib.suppress(ImportError, AttributeError, OSError):  # Linux only
            import fcntl

            fcntl.fcntl(self.process.stdin.fileno(), fcntl.F_SETPIPE_SZ, PIPE_BYTES)
        self.gone = False
        self._stopping = False
        self.parts_read = 0
        # A full pipe blocks its writer until the helper has read a group: a thread of its
        # own writes, never the event loop.
        for target, name in ((self._write, "writer"), (self._read, "reader")):
            threading.Thread(target=target, name=f"workbench-header-{name}", daemon=True).start()

    @property
    def backlog(self) -> int:
        return len(self._pending)

    def submit(self, items: Items) -> Future:
        future: Future = Future()
        with self._lock:
            if self.gone:
                raise HelperGoneError("the header helper process has exited")
            number = next(self._numbers)
            self._pending[number] = future
            self._unsent += 1
            self.all_sent.clear()
        self._outbox.put((number, items))
        return future

    def stop(self) -> None:
        self._stopping = True
        self._outbox.put(None)

    def _write(self) -> None:
        assert self.process.stdin is not None
        try:
            with self.process.stdin as stream:
                while (message := self._outbox.get()) is not None:
                    _send(stream, message)
                    with self._lock:
                        self._unsent -= 1
                        if not self._unsent:
                            self.all_sent.set()
        except OSError as exc:  # the helper died: the reader sees its end
            log.warning("Writing to the header helper process failed: %s", exc)

    def _read(self) -> None:
        assert self.process.stdout is not None
        try:
            while (message := _receive(self.process.stdout)) is not None:
                number, results = message  # type: ignore[misc]
                with self._lock:
                    future = self._pending.pop(number)
                self.parts_read += len(results)
                future.set_result(results)
        finally:
            status = self.process.wait()
            if not self._stopping:
                log.warning("The STOW-RS header helper process exited (status %s); headers are "
                            "read in the server's process until the next upload starts one",
                            status)  # fmt: skip
            with self._lock:
                self.gone = True
                pending, self._pending = list(self._pending.values()), {}
            for future in pending:
                future.set_exception(
                    HelperGoneError(f"the header helper process exited (status {status})")
                )


class HeaderHelpers:
    """Helper processes reading headers for one server.

    Parameters
    ----------
    processes : int
        How many (``0``: none, every header is read in the server's process).

    Raises
    ------
    ValueError
        If ``processes`` is not a whole number >= 0.
    """

    def __init__(self, processes: int) -> None:
        if isinstance(processes, bool) or not isinstance(processes, int) or processes < 0:
            raise ValueError(f"StowHeaderProcesses must be a whole number >= 0, not {processes!r}")
        self.processes = processes
        self._helpers: list[_Helper] = []
        self._lock = threading.Lock()

    def start(self) -> None:
        """Start the helpers not running (none if none are configured); returns at once,
        each takes groups once it is ready."""
        with self._lock:
            self._helpers = [helper for helper in self._helpers if not helper.gone]
            while len(self._helpers) < self.processes:
                self._helpers.append(_Helper())

    @property
    def parts_read(self) -> int:
        """Parts read by the helpers running (a measure of how much they take)."""
        return sum(helper.parts_read for helper in self._helpers)

    @property
    def ready(self) -> bool:
        """Whether a helper can take a group now."""
        return any(h.ready.done() and not h.gone for h in self._helpers)

    def submit(self, items: Items) -> Future | None:
        """Have the least busy helper read ``items`` (see :func:`parse_group`); ``None`` if
        no helper can."""
        helpers = [h for h in self._helpers if h.ready.done() and not h.gone]
        for helper in sorted(helpers, key=lambda h: h.backlog):
            try:
                return helper.submit(items)
            except HelperGoneError:
                continue
        return None

    def wait_sent(self, timeout: float) -> None:
        """Wait (``timeout`` seconds at most) until every group submitted is in its
        helper's pipe. A caller about to hold the interpreter lock for a while (reading
        headers itself) lets the threads writing the pipes go first: they would otherwise
        get the lock only at the next switch of threads (5 ms) and the helpers would wait."""
        for helper in list(self._helpers):
            helper.all_sent.wait(timeout)

    def close(self) -> None:
        """Stop the helpers once they have read the groups they have."""
        with self._lock:
            helpers, self._helpers = self._helpers, []
        for helper in helpers:
            helper.stop()
        for helper in helpers:
            try:
                helper.process.wait(10)
            except subprocess.TimeoutExpired:
                helper.process.kill()
                helper.process.wait()


def _serve(requests: BinaryIO, answers: BinaryIO) -> None:
    """The helper's loop: read groups until the server closes its standard input."""
    freeze_startup_objects()
    _send(answers, (0, []))  # ready
    while (message := _receive(requests)) is not None:
        number, items = message  # type: ignore[misc]
        _send(answers, (number, parse_group(items)))


if __name__ == "__main__":
    # Answers go up the original standard output; anything printed goes to standard error.
    answers = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)
    _serve(sys.stdin.buffer, answers)
