"""``CompletedSeries`` in the change log, as Orthanc logs it: when a new instance makes its
series hold exactly the instances the series announces (``Status`` ``Complete``).

Most series announce no count; which do is read once per series and remembered, so ingesting
their instances costs no query here.
"""

from __future__ import annotations

from collections.abc import Callable

import sqlalchemy as sa

from ..errors import UnknownResourceError
from . import reads, views

#: Series remembered at most (a plain reset past it keeps memory bounded).
REMEMBERED = 100_000


class SeriesCompletion:
    """Checks a series after each new instance and logs ``CompletedSeries`` when complete.

    Parameters
    ----------
    engine : sqlalchemy.Engine
        The index database (read).
    log : callable
        Called with the ``(change type, level, public ID)`` to log.
    """

    def __init__(self, engine: sa.Engine, log: Callable[[str, str, str], None]) -> None:
        self.engine = engine
        self._log = log
        self._silent: set[str] = set()  # series that announce no count

    def new_instance(self, series_id: str) -> None:
        if series_id in self._silent:
            return
        with self.engine.connect() as conn:
            try:
                row = reads.row(conn, "Series", series_id)
            except UnknownResourceError:  # deleted meanwhile
                return
            expected = views.expected_instances(row._mapping)
            if expected is None:
                if len(self._silent) >= REMEMBERED:
                    self._silent.clear()
                self._silent.add(series_id)
                return
            status = views.series_status(reads.indexes_in_series(conn, row.pk), expected)
        if status == "Complete":
            self._log("CompletedSeries", "Series", series_id)
