"""The process that copies an import's files into the store (see
:class:`workbench.pacs.importing.CopyingProcess`).

It is started as a script, by its path, so that it loads the standard library alone (not
the package's imports); it must import nothing else. It reads requests from its standard
input, one JSON line each: a list of ``[source, target]`` paths. It copies them with
:data:`threads <sys.argv>` threads and answers with one JSON line: for each pair, the
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
from concurrent.futures import ThreadPoolExecutor
from typing import TextIO


def copy_file(pair: list[str]) -> int | str:
    """Copy ``source`` to ``target`` (the kernel copies); its size, or the error message."""
    source, target = pair
    try:
        shutil.copyfile(source, target)
        return os.stat(target).st_size
    except OSError as exc:
        with contextlib.suppress(OSError):
            os.unlink(target)
        return str(exc)


def serve(requests: TextIO, replies: TextIO, threads: int) -> None:
    """Answer each request line of ``requests`` on ``replies`` until ``requests`` ends."""
    with ThreadPoolExecutor(threads) as pool:
        for line in requests:
            replies.write(json.dumps(list(pool.map(copy_file, json.loads(line)))) + "\n")
            replies.flush()


if __name__ == "__main__":
    # Ctrl-C reaches the whole process group: the import stops us by closing our input.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    # JSON escapes every character outside ASCII, the surrogates of paths that are not
    # UTF-8 included: the lines are ASCII whatever the locale.
    serve(sys.stdin, sys.stdout, int(sys.argv[1]))
