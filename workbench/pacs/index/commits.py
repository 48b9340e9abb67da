"""Group commit: rows of concurrent writers committed together, one transaction per group.

Each instance arriving on its own association (or upload) would otherwise pay a transaction
of its own, one after the other behind the index's write lock. Here a writer queues its item
and waits for the lock; whoever gets the lock takes every item queued by then and commits
them in one transaction. While that transaction runs, the next writers queue up, and the
first of them to get the lock commits all of them at once. Alone, a writer commits its item
by itself, as before: nothing waits for a group to fill.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Generic, TypeVar

Item = TypeVar("Item")
Outcome = TypeVar("Outcome")


@dataclass
class _Waiting(Generic[Item, Outcome]):
    item: Item
    outcome: Outcome | BaseException | None = None
    done: bool = False


class GroupCommit(Generic[Item, Outcome]):
    """Commits items queued by many threads in groups.

    Parameters
    ----------
    commit_many : callable
        Commits a list of items in one go and returns one outcome per item, in order: the
        item's result, or the exception that refused it alone.
    lock : threading.RLock
        The lock every write of the index holds: one group is committed at a time, and
        never in the middle of another write.
    """

    def __init__(
        self,
        commit_many: Callable[[list[Item]], list[Outcome | BaseException]],
        lock: threading.RLock,
    ) -> None:
        self._commit_many = commit_many
        self._lock = lock
        self._queue: list[_Waiting[Item, Outcome]] = []
        self._queue_lock = threading.Lock()

    def submit(self, item: Item) -> Outcome:
        """Commit ``item`` (with whatever else is queued) and return its outcome.

        Returns only once the transaction holding the item has committed; raises the
        item's own exception if it was refused, or the group's if the commit failed.
        """
        waiting: _Waiting[Item, Outcome] = _Waiting(item)
        with self._queue_lock:
            self._queue.append(waiting)
        with self._lock:
            if not waiting.done:  # nobody took it yet: commit the queue, ours included
                with self._queue_lock:
                    group, self._queue = self._queue, []
                try:
                    outcomes = self._commit_many([entry.item for entry in group])
                except BaseException as exc:  # the whole group failed: each writer hears it
                    outcomes = [exc] * len(group)
                for entry, outcome in zip(group, outcomes, strict=True):
                    entry.outcome, entry.done = outcome, True
        if isinstance(waiting.outcome, BaseException):
            raise waiting.outcome
        return waiting.outcome  # type: ignore[return-value]
