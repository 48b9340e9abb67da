"""Messages between the node's acceptor and its worker processes: JSON objects framed by
their length on a Unix stream socket pair, a connection's descriptor riding along with the
message that hands it over."""

from __future__ import annotations

import json
import socket
import struct
import threading
from typing import Any

_HEADER = struct.Struct("!I")


def pair() -> tuple[socket.socket, socket.socket]:
    """A connected pair of Unix stream sockets: the acceptor's end and a worker's."""
    return socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)


class Channel:
    """One end of a pair: :meth:`send` from any thread, :meth:`receive` from one.

    Parameters
    ----------
    sock : socket.socket
        A Unix stream socket (an end of :func:`pair`, or one inherited by descriptor).
    """

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self._sending = threading.Lock()

    def send(self, message: dict[str, Any], fd: int | None = None) -> None:
        """Send ``message``, with the descriptor ``fd`` attached when given (the receiver
        gets its own copy; the sender still closes its one)."""
        data = json.dumps(message).encode()
        frame = _HEADER.pack(len(data)) + data
        with self._sending:
            if fd is None:
                self.sock.sendall(frame)
                return
            sent = socket.send_fds(self.sock, [frame], [fd])
            self.sock.sendall(frame[sent:])

    def receive(self) -> tuple[dict[str, Any] | None, socket.socket | None]:
        """The next message and the connection handed with it; ``(None, None)`` once the
        other end is closed (its process gone)."""
        try:
            # The descriptor is attached to the frame's first bytes, read here.
            head, fds, _flags, _address = socket.recv_fds(self.sock, _HEADER.size, 1)
        except OSError:
            return None, None
        handed = socket.socket(fileno=fds[0]) if fds else None
        try:
            head += self._exactly(_HEADER.size - len(head)) if head else b""
            if len(head) < _HEADER.size:
                raise EOFError
            return json.loads(self._exactly(_HEADER.unpack(head)[0])), handed
        except (EOFError, OSError):
            if handed is not None:
                handed.close()
            return None, None

    def _exactly(self, size: int) -> bytes:
        chunks = []
        while size:
            chunk = self.sock.recv(min(size, 1 << 20))
            if not chunk:
                raise EOFError
            chunks.append(chunk)
            size -= len(chunk)
        return b"".join(chunks)

    def close(self) -> None:
        self.sock.close()
