"""Writes into a workspace's data sources, and the moments they must wait.

Every insert tody makes into a data source (an events flush, a file import, a copy) runs inside
`hold.writing(workspace)`; a materialized view's populate runs inside `hold.exclusive(workspace)`,
which waits for running writes to finish and keeps new ones waiting until it is done. While it holds,
the view is created and the rows already in the source are read once into the target; every row
written after it goes through the view. So each source row reaches the target exactly once.
Events are still acknowledged meanwhile (they wait in the write-ahead log).
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager


class _ReadersWriter:
    """Many writers or one exclusive holder; a waiting exclusive holder goes before new writers."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._writing = 0
        self._exclusive = False
        self._waiting_exclusive = 0

    @contextmanager
    def shared(self) -> Iterator[None]:
        with self._cond:
            while self._exclusive or self._waiting_exclusive:
                self._cond.wait()
            self._writing += 1
        try:
            yield
        finally:
            with self._cond:
                self._writing -= 1
                self._cond.notify_all()

    @contextmanager
    def exclusive(self) -> Iterator[None]:
        with self._cond:
            self._waiting_exclusive += 1
            try:
                while self._exclusive or self._writing:
                    self._cond.wait()
            finally:
                self._waiting_exclusive -= 1
            self._exclusive = True
        try:
            yield
        finally:
            with self._cond:
                self._exclusive = False
                self._cond.notify_all()


class IngestHold:
    def __init__(self) -> None:
        self._locks: dict[str, _ReadersWriter] = {}
        self._lock = threading.Lock()
        self._local = threading.local()

    def _for(self, workspace_id: str) -> _ReadersWriter:
        with self._lock:
            lock = self._locks.get(workspace_id)
            if lock is None:
                lock = self._locks[workspace_id] = _ReadersWriter()
            return lock

    @contextmanager
    def writing(self, workspace_id: str) -> Iterator[None]:
        if self._holds(workspace_id):  # a populate's own inserts
            yield
            return
        with self._for(workspace_id).shared():
            yield

    @contextmanager
    def exclusive(self, workspace_id: str) -> Iterator[None]:
        if self._holds(workspace_id):
            yield
            return
        with self._for(workspace_id).exclusive():
            held = self._held()
            held.add(workspace_id)
            try:
                yield
            finally:
                held.discard(workspace_id)

    def _held(self) -> set[str]:
        held = getattr(self._local, "held", None)
        if held is None:
            held = self._local.held = set()
        return held

    def _holds(self, workspace_id: str) -> bool:
        return workspace_id in self._held()
