"""With ``DicomModalitiesInDatabase``, a server follows the modalities declared in its database.

Several servers on one database then agree on their modalities within
:data:`FOLLOW_INTERVAL` seconds, whichever of them a ``PUT``/``DELETE /modalities/{name}``
reached: the database is read that often and, when its modalities differ from the ones the
server uses, they replace them (and reach the server's DICOM worker processes). The
``/modalities`` routes read them again at once (:meth:`ModalitiesFollower.sync`), so a
change made through one server is seen by the REST API of every other at once.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any

LOGGER = logging.getLogger("workbench.pacs.node")

#: Seconds between two readings of the modalities stored in the database.
FOLLOW_INTERVAL = 2.0


class ModalitiesFollower:
    """A thread keeping ``config.DicomModalities`` equal to the modalities ``index`` stores.

    Parameters
    ----------
    index : Index
        The index whose database keeps the modalities.
    config : Config
        The configuration whose ``DicomModalities`` the server reads on each request.
    on_change : callable
        Called after the modalities were replaced (e.g. to tell worker processes).
    interval : float
        Seconds between two readings.
    """

    def __init__(self, index: Any, config: Any, on_change: Callable[[], None],
                 interval: float = FOLLOW_INTERVAL) -> None:  # fmt: skip
        self._index, self._config, self._on_change = index, config, on_change
        self._interval = interval
        self._stopping = threading.Event()
        # One reading applied at a time: a reading made before a change must not be applied
        # after the reading that follows the change.
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._follow, name="modalities", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        self._stopping.set()
        self._thread.join(timeout)

    def sync(self) -> None:
        """Use the modalities stored now (a no-op if they are the ones in use)."""
        with self._lock:
            stored = self._index.stored_modalities()
            if stored != self._config.DicomModalities:
                self._config.DicomModalities = stored
                self._on_change()

    def _follow(self) -> None:
        unreachable = False
        while not self._stopping.wait(self._interval):
            try:
                self.sync()
            except Exception as exc:  # database down: keep the modalities known, try again
                if not unreachable:
                    LOGGER.warning("Could not read the modalities from the database "
                                   "(the ones known are kept meanwhile): %s", exc)  # fmt: skip
                unreachable = True
            else:
                if unreachable:
                    LOGGER.info("The modalities are read from the database again")
                unreachable = False
