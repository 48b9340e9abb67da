"""The process that copies an import's files into the store (see
:class:`workbench.pacs.importing.CopyingProcess`).

It is started as a script, by its path, so that it loads the standard library alone (not
the package's imports); it must import nothing else. It reads requests from its standard
input, one JSON line each: a list of ``[source, target]``, the source a path or, for a
member of a ZIP archive, ``[archive, offset of the member's local header]``. It copies
them with :data:`threads <sys.argv>` threads and answers with one JSON line: for each pair, the
size of the copy, or the message of the error that kept the source from being copied
(nothing is left at the target then). It ends when its input ends.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import sys
import threading
import zipfile
from concurrent.futures import ThreadPoolExecutor
from typing import Any, BinaryIO, TextIO


class Archives:
    """ZIP archives opened for their members, each once, until :meth:`close`."""

    def __init__(self) -> None:
        self._opened: dict[str, tuple[zipfile.ZipFile, dict[int, zipfile.ZipInfo]]] = {}
        self._lock = threading.Lock()

    def member(self, archive: str, offset: int) -> BinaryIO:
        """A binary file reading the member whose local header is at ``offset``."""
        with self._lock:
            if archive not in self._opened:
                opened = zipfile.ZipFile(archive)
                by_offset = {info.header_offset: info for info in opened.infolist()}
                self._opened[archive] = opened, by_offset
            opened, by_offset = self._opened[archive]
            return opened.open(by_offset[offset])

    def close(self) -> None:
        for opened, _ in self._opened.values():
            opened.close()


def copy_file(pair: list[Any], archives: Archives) -> int | str:
    """Copy a source (a path, or ``[archive, offset]`` for a ZIP member) to its target:
    the copy's size, or the message of the error (nothing left at the target then)."""
    source, target = pair
    try:
        if isinstance(source, str):  # the kernel copies (copy_file_range/sendfile)
            shutil.copyfile(source, target)
        else:  # inflated as it is read, its CRC checked at the end
            with archives.member(*source) as stream, open(target, "xb") as handle:
                shutil.copyfileobj(stream, handle, 1 << 20)
        return os.stat(target).st_size
    except Exception as exc:  # any source's failure is its answer, not the end of us
        with contextlib.suppress(OSError):
            os.unlink(target)
        return str(exc)


def serve(requests: TextIO, replies: TextIO, threads: int) -> None:
    """Answer each request line of ``requests`` on ``replies`` until ``requests`` ends."""
    archives = Archives()
    try:
        with ThreadPoolExecutor(threads) as pool:
            for line in requests:
                pairs = json.loads(line)
                sizes = list(pool.map(copy_file, pairs, [archives] * len(pairs)))
                replies.write(json.dumps(sizes) + "\n")
                replies.flush()
    finally:
        archives.close()


if __name__ == "__main__":
    # Ctrl-C reaches the whole process group: the import stops us by closing our input.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    # JSON escapes every character outside ASCII, the surrogates of paths that are not
    # UTF-8 included: the lines are ASCII whatever the locale.
    serve(sys.stdin, sys.stdout, int(sys.argv[1]))
