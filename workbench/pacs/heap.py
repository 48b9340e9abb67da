"""Start-up objects of long-running server processes, kept out of the collector's way."""

from __future__ import annotations

import gc


def freeze_startup_objects() -> None:
    """Move every object alive now to the garbage collector's permanent generation.

    Called once a long-running process has started (``workbench serve``, a DICOM worker,
    a header helper, ``workbench import``). Start-up leaves some 200,000 objects (modules,
    pydicom's dictionaries, the web app) that live as long as the process, and every full
    collection walked them all: ~100 ms, once every few dozen requests of an upload, during
    which the process answered nothing. Frozen (:func:`gc.freeze`), they are never walked
    again; what requests make is collected as before.
    """
    gc.freeze()
