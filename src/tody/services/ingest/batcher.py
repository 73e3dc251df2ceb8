"""Per-key batching of logged events into one engine INSERT per flush (DESIGN.md decision 6).

`submit` appends to the write-ahead log (durable: the 202 path) and queues the record under its key. Worker
threads flush a key when it holds `max_records` or `max_bytes`, or when its oldest record is `max_delay`
old, calling `flush(key, records, dedup_token)` with every pending record of the key (up to the bounds).

Replays must be idempotent, so a replayed batch has to be the very same batch, with the same token:
- the log's listener hands records to the batcher in lsn order, so a key's batches are consecutive runs
  of its records, named by (key, first lsn, last lsn);
- before a batch is flushed, an *intent* record naming it is made durable in the log; after the flush, a
  *done* record is queued (not waited for). Both live under the reserved key `CONTROL_KEY`;
- `recover()` re-forms every batch that has an intent but no done record and whose records are above the
  checkpoint, and flushes it again with the same token `<wal_id>:<key>:<first>-<last>`, which the engine
  deduplicates (`insert_deduplication_token` + `non_replicated_deduplication_window`). Records without an
  intent were never flushed and are batched afresh. Done records make a replay skip flushed batches even
  when the checkpoint was held back for longer than the engine's deduplication window.
The wal_id (a random id created with the log directory) keeps tokens unique if the log is ever recreated.

After each successful flush the log is checkpointed up to the highest lsn below which every record of
every key is flushed. A failed flush keeps its batch (same records, same token) and retries it with
exponential backoff; `wait_flushed` callers whose lsn is in that batch get the flush's exception.
`flush` should raise only for failures worth retrying; it decides itself what to do with data that can
never be stored (for example a deleted data source) and then returns normally.
"""

from __future__ import annotations

import bisect
import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field

import orjson

from tody.engine.base import Engine
from tody.services.ingest.wal import WalRecord, WriteAheadLog

log = logging.getLogger(__name__)

CONTROL_KEY = "\x00tody.batcher"

Flush = Callable[[str, list[WalRecord], str], None]


class BacklogFullError(RuntimeError):
    """Too many events are waiting for the engine: refuse new ones (HTTP 429/503) until it catches up."""


@dataclass(eq=False)
class _Batch:
    key: str
    first: int
    last: int
    token: str
    records: list[WalRecord] = field(default_factory=list)
    nbytes: int = 0
    intent_written: bool = False
    complete: bool = True  # False while recover() is still reading its records
    attempts: int = 0
    not_before: float = 0.0
    error: BaseException | None = None


@dataclass(eq=False)
class _Key:
    pending: deque[WalRecord] = field(default_factory=deque)
    pending_bytes: int = 0
    oldest: float = 0.0  # monotonic time the oldest pending record arrived
    sealed: deque[_Batch] = field(default_factory=deque)
    busy: bool = False  # a worker is flushing sealed[0]

    def first_unflushed(self) -> int | None:
        if self.sealed:
            return self.sealed[0].first
        if self.pending:
            return self.pending[0].lsn
        return None


class Batcher:
    def __init__(
        self,
        wal: WriteAheadLog,
        flush: Flush,
        *,
        max_delay: float = 1.0,
        max_bytes: int = 8 << 20,
        max_records: int = 10_000,
        workers: int = 1,
        retry_backoff: float = 0.5,
        max_retry_backoff: float = 30.0,
        max_pending_bytes: int = 1 << 30,
    ):
        self._wal = wal
        self._flush = flush
        self.max_delay = max_delay
        self.max_bytes = max_bytes
        self.max_records = max_records
        self.retry_backoff = retry_backoff
        self.max_retry_backoff = max_retry_backoff
        self.max_pending_bytes = max_pending_bytes
        self.flushes = 0  # successful flush calls
        self.failures = 0  # failed flush calls
        self._lock = threading.Lock()
        self._work = threading.Condition(self._lock)  # workers wait here
        self._flushed = threading.Condition(self._lock)  # wait_flushed / close / recover wait here
        self._keys: dict[str, _Key] = {}
        self._unflushed: dict[int, str] = {}  # lsn -> key, for every queued data record
        self._unflushed_bytes = 0
        self._recovered = False
        self._recovering = False
        self._replay_pos = 0  # while recovering: records above this have not been read yet
        self._closed = False  # no more submits
        self._draining = False  # flush everything now, whatever its age
        self._stopping = False  # workers exit
        self._submitting = 0
        self._seen = wal.set_listener(self._on_durable)  # highest lsn handed to us (or on disk at start)
        self._workers = [
            threading.Thread(target=self._worker, name=f"tody-batcher-{i}", daemon=True)
            for i in range(max(1, workers))
        ]
        for thread in self._workers:
            thread.start()

    # -- submitting -----------------------------------------------------------------------------

    def _enter(self, key: str) -> None:
        if key.startswith("\x00"):
            raise ValueError("keys starting with NUL are reserved")
        with self._lock:
            if self._closed:
                raise RuntimeError("the batcher is closed")
            if not self._recovered:
                raise RuntimeError("call Batcher.recover() before submitting")
            if self._unflushed_bytes >= self.max_pending_bytes:
                raise BacklogFullError(
                    f"{self._unflushed_bytes} bytes of events are waiting to be written; retry later"
                )
            self._submitting += 1

    def _leave(self) -> None:
        with self._lock:
            self._submitting -= 1
            if self._submitting == 0:
                self._flushed.notify_all()

    def submit(self, key: str, payload: bytes) -> int:
        """Append to the log (durable once this returns) and queue for flushing; returns the lsn."""
        self._enter(key)
        try:
            return self._wal.append(key, payload)
        finally:
            self._leave()

    async def submit_async(self, key: str, payload: bytes) -> int:
        self._enter(key)
        try:
            return await self._wal.append_async(key, payload)
        finally:
            self._leave()

    def _queue(self, record: WalRecord, now: float) -> bool:
        """Add a data record to its key's pending run (lock held). True when a worker should look."""
        state = self._keys.get(record.key)
        if state is None:
            state = self._keys[record.key] = _Key()
        was_empty = not state.pending
        if was_empty:
            state.oldest = now
        state.pending.append(record)
        state.pending_bytes += len(record.payload)
        self._unflushed[record.lsn] = record.key
        self._unflushed_bytes += len(record.payload)
        return was_empty or len(state.pending) >= self.max_records or state.pending_bytes >= self.max_bytes

    def _on_durable(self, records: list[WalRecord]) -> None:
        """Called by the log's writer thread, in lsn order, before the appenders return."""
        now = time.monotonic()
        wake = False
        with self._lock:
            for record in records:
                if record.key != CONTROL_KEY:
                    wake = self._queue(record, now) or wake
            self._seen = records[-1].lsn
            if wake:
                self._work.notify()

    # -- waiting --------------------------------------------------------------------------------

    def wait_flushed(self, lsn: int, timeout: float | None = None) -> None:
        """Return once the batch holding `lsn` is in the engine; raise its flush's exception if that
        failed (the batch stays queued and is retried); TimeoutError after `timeout` seconds."""
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._lock:
            while True:
                key = self._unflushed.get(lsn)
                if key is None and lsn <= self._seen:
                    return
                if key is not None:
                    state = self._keys[key]
                    batch = state.sealed[0] if state.sealed else None
                    if batch is not None and batch.error is not None and batch.first <= lsn <= batch.last:
                        raise batch.error
                remaining = None if deadline is None else deadline - time.monotonic()
                if remaining is not None and remaining <= 0:
                    raise TimeoutError(f"event {lsn} was not written within {timeout} s")
                self._flushed.wait(remaining)

    def pending(self) -> int:
        """Records logged but not yet flushed."""
        with self._lock:
            return len(self._unflushed)

    # -- workers --------------------------------------------------------------------------------

    def _seal(self, key: str, state: _Key) -> _Batch:
        records: list[WalRecord] = []
        size = 0
        while state.pending and len(records) < self.max_records:
            nbytes = len(state.pending[0].payload)
            if records and size + nbytes > self.max_bytes:
                break
            records.append(state.pending.popleft())
            size += nbytes
        state.pending_bytes -= size
        batch = _Batch(
            key, records[0].lsn, records[-1].lsn, self._token(key, records[0].lsn, records[-1].lsn)
        )
        batch.records = records
        batch.nbytes = size
        state.sealed.append(batch)
        return batch

    def _token(self, key: str, first: int, last: int) -> str:
        return f"{self._wal.wal_id}:{key}:{first}-{last}"

    def _next_job(self, now: float) -> tuple[str | None, float | None]:
        """The key most overdue for a flush (lock held), or how long to wait for one."""
        best: str | None = None
        best_due = 0.0
        wait: float | None = None
        for key, state in self._keys.items():
            if state.busy:
                continue
            if state.sealed:
                batch = state.sealed[0]
                if not batch.complete:
                    continue
                due = batch.not_before
            elif state.pending:
                full = len(state.pending) >= self.max_records or state.pending_bytes >= self.max_bytes
                due = now if full or self._draining else state.oldest + self.max_delay
            else:
                continue
            if due <= now:
                if best is None or due < best_due:
                    best, best_due = key, due
            elif wait is None or due - now < wait:
                wait = due - now
        return best, wait

    def _worker(self) -> None:
        while True:
            with self._lock:
                while True:
                    if self._stopping:
                        return
                    key, wait = self._next_job(time.monotonic())
                    if key is not None:
                        break
                    self._work.wait(wait)
                state = self._keys[key]
                batch = state.sealed[0] if state.sealed else self._seal(key, state)
                state.busy = True
                self._work.notify()  # another worker may take another key
            self._run(state, batch)

    def _run(self, state: _Key, batch: _Batch) -> None:
        try:
            if not batch.intent_written:
                self._wal.append(CONTROL_KEY, _control("intent", batch))
                batch.intent_written = True
            self._flush(batch.key, batch.records, batch.token)
        except Exception as exc:
            with self._lock:
                batch.attempts += 1
                batch.error = exc
                delay = min(self.max_retry_backoff, self.retry_backoff * 2 ** (batch.attempts - 1))
                batch.not_before = time.monotonic() + delay
                state.busy = False
                self.failures += 1
                self._flushed.notify_all()
                self._work.notify()
            log.error(
                "flushing %d events of %s (lsn %d..%d) failed, attempt %d, retrying in %.1f s: %s",
                len(batch.records),
                batch.key,
                batch.first,
                batch.last,
                batch.attempts,
                delay,
                exc,
                exc_info=exc if batch.attempts == 1 else None,
            )
            return
        with self._lock:
            state.sealed.popleft()
            state.busy = False
            for record in batch.records:
                del self._unflushed[record.lsn]
            self._unflushed_bytes -= batch.nbytes
            self.flushes += 1
            upto = self._flushed_prefix()
            self._flushed.notify_all()
            self._work.notify()
        try:
            self._wal.append_nowait(CONTROL_KEY, _control("done", batch))
        except Exception as exc:  # the log is closing or failed; recovery falls back on dedup tokens
            log.debug("could not log the end of batch %s: %s", batch.token, exc)
        self._checkpoint(upto)

    def _flushed_prefix(self) -> int:
        """The highest lsn at or below which every record is flushed (lock held)."""
        upto = self._replay_pos if self._recovering else self._seen
        for state in self._keys.values():
            first = state.first_unflushed()
            if first is not None and first - 1 < upto:
                upto = first - 1
        return upto

    def _checkpoint(self, upto: int) -> None:
        if upto <= self._wal.checkpoint_lsn:
            return
        try:
            self._wal.checkpoint(upto)
        except Exception:
            log.exception("write-ahead log checkpoint at lsn %d failed", upto)

    # -- recovery -------------------------------------------------------------------------------

    def recover(self, timeout: float | None = None) -> int:
        """Replay the log: flush again every record above the checkpoint that may not be in the engine
        (same batches, same tokens), wait for it and checkpoint. Returns the number of records replayed.
        A flush that keeps failing raises here (its batch stays queued and keeps being retried)."""
        with self._lock:
            if self._recovered or self._recovering:
                raise RuntimeError("recover() runs once, before any submit")
            self._recovering = True
            ckpt = self._wal.checkpoint_lsn
            self._replay_pos = ckpt
        skip, intents = self._read_control(ckpt)
        open_batches: dict[str, _Batch] = {}
        replayed = 0
        last = ckpt
        now = time.monotonic()
        for record in self._wal.replay():
            last = record.lsn
            with self._lock:
                self._replay_pos = record.lsn
                if record.key == CONTROL_KEY:
                    continue
                if _find(skip.get(record.key), record.lsn) is not None:
                    continue
                replayed += 1
                span = _find(intents.get(record.key), record.lsn)
                if span is None:
                    if self._queue(record, now):
                        self._work.notify()
                    continue
                batch = open_batches.get(record.key)
                if batch is None or batch.first != span[0]:
                    if batch is not None:
                        self._close_incomplete(batch)
                    state = self._keys.setdefault(record.key, _Key())
                    batch = _Batch(record.key, span[0], span[1], self._token(record.key, *span))
                    batch.intent_written = True
                    batch.complete = False
                    state.sealed.append(batch)
                    open_batches[record.key] = batch
                batch.records.append(record)
                batch.nbytes += len(record.payload)
                self._unflushed[record.lsn] = record.key
                self._unflushed_bytes += len(record.payload)
                if record.lsn == batch.last:
                    batch.complete = True
                    del open_batches[record.key]
                    self._work.notify()
        with self._lock:
            for batch in open_batches.values():
                self._close_incomplete(batch)
            self._recovering = False
            self._recovered = True
            self._draining = True
            self._work.notify_all()
        try:
            self._wait_all(last, timeout, raise_errors=True)
        finally:
            with self._lock:
                self._draining = False
        self._checkpoint(self._flushed_prefix_locked())
        if replayed:
            log.info("replayed %d events from the write-ahead log", replayed)
        return replayed

    def _read_control(self, ckpt: int) -> tuple[dict, dict]:
        """Flushed spans to skip and logged-but-maybe-unflushed spans, per key, from the control records."""
        intents: dict[str, list[tuple[int, int]]] = {}
        done: dict[str, set[tuple[int, int]]] = {}
        for record in self._wal.replay():
            if record.key == CONTROL_KEY:
                doc = orjson.loads(record.payload)
                span = (int(doc["first"]), int(doc["last"]))
                if doc["op"] == "intent":
                    intents.setdefault(doc["key"], []).append(span)
                else:
                    done.setdefault(doc["key"], set()).add(span)
        skip: dict[str, list[tuple[int, int]]] = {}
        todo: dict[str, list[tuple[int, int]]] = {}
        for key, spans in intents.items():
            for span in spans:
                # A batch reaching down to the checkpoint was flushed: the checkpoint passed part of it.
                flushed = span[0] <= ckpt or span in done.get(key, ())
                (skip if flushed else todo).setdefault(key, []).append(span)
        for spans in (*skip.values(), *todo.values()):
            spans.sort()
        return skip, todo

    def _close_incomplete(self, batch: _Batch) -> None:
        log.error(
            "batch %s: only %d of its records are in the write-ahead log; flushing those",
            batch.token,
            len(batch.records),
        )
        batch.complete = True
        self._work.notify()

    def _flushed_prefix_locked(self) -> int:
        with self._lock:
            return self._flushed_prefix()

    def _wait_all(self, upto: int, timeout: float | None, *, raise_errors: bool = False) -> None:
        """Wait until every record <= upto is flushed; with raise_errors, raise a failed batch's error."""
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._lock:
            while self._flushed_prefix() < upto:
                for state in self._keys.values() if raise_errors else ():
                    if state.sealed and state.sealed[0].error is not None and state.sealed[0].first <= upto:
                        raise state.sealed[0].error
                remaining = None if deadline is None else deadline - time.monotonic()
                if remaining is not None and remaining <= 0:
                    raise TimeoutError(f"events up to {upto} were not written within {timeout} s")
                self._flushed.wait(remaining)

    # -- closing --------------------------------------------------------------------------------

    def close(self, *, flush: bool = True, timeout: float | None = 30.0) -> None:
        """Stop taking submits; with `flush`, write everything pending (retrying failures until
        `timeout`) and checkpoint. Whatever is not written stays in the log for the next recover()."""
        with self._lock:
            if self._stopping:
                return
            self._closed = True
            while self._submitting:
                self._flushed.wait()
            self._draining = flush
            self._work.notify_all()
            upto = self._seen
        if flush:
            try:
                self._wait_all(upto, timeout)
            except TimeoutError as exc:
                log.error("closing with unwritten events (they stay in the write-ahead log): %s", exc)
        with self._lock:
            self._stopping = True
            self._work.notify_all()
        for thread in self._workers:
            thread.join()
        self._wal.set_listener(None)
        if flush:
            self._checkpoint(self._flushed_prefix_locked())

    def __enter__(self) -> Batcher:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _control(op: str, batch: _Batch) -> bytes:
    return orjson.dumps(
        {"op": op, "key": batch.key, "first": batch.first, "last": batch.last, "count": len(batch.records)}
    )


def _find(spans: list[tuple[int, int]] | None, lsn: int) -> tuple[int, int] | None:
    """The span in sorted, disjoint `spans` that holds lsn."""
    if not spans:
        return None
    i = bisect.bisect_right(spans, (lsn, float("inf"))) - 1
    if i >= 0 and spans[i][0] <= lsn <= spans[i][1]:
        return spans[i]
    return None


def ndjson_chunks(records: Iterable[WalRecord], chunk_bytes: int = 1 << 20) -> Iterator[bytes]:
    """The payloads as one newline-delimited stream, in chunks of about `chunk_bytes`."""
    parts: list[bytes] = []
    size = 0
    for record in records:
        payload = record.payload
        if not payload:
            continue
        parts.append(payload)
        size += len(payload)
        if not payload.endswith(b"\n"):
            parts.append(b"\n")
            size += 1
        if size >= chunk_bytes:
            yield b"".join(parts)
            parts, size = [], 0
    if parts:
        yield b"".join(parts)


def engine_flush(
    engine: Engine, table: Callable[[str], str], fmt: str = "JSONEachRow", settings: dict | None = None
) -> Flush:
    """A `flush` that INSERTs a batch into `table(key)` (a quoted, qualified name) on an `Engine`, with
    the batch's token as `insert_deduplication_token`. The table needs `non_replicated_deduplication_window`
    (MergeTree) for replays to be deduplicated."""

    def flush(key: str, records: list[WalRecord], token: str) -> None:
        stream = engine.insert(
            f"INSERT INTO {table(key)}",
            fmt,
            settings={**(settings or {}), "insert_deduplication_token": token},
        )
        try:
            for chunk in ndjson_chunks(records):
                stream.write(chunk)
        except BaseException:
            stream.cancel()
            raise
        stream.finish()

    return flush
