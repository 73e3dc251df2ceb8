"""The batcher on a real chDB table: one INSERT per flush, wait_flushed, retries, idempotent replays."""

from __future__ import annotations

import asyncio
import threading
import time

import pytest

from tody.engine.base import quote_string
from tody.services.ingest.batcher import CONTROL_KEY, BacklogFullError, Batcher, engine_flush, ndjson_chunks
from tody.services.ingest.wal import WalRecord, WriteAheadLog

KEY = "ws/events"


@pytest.fixture
def table(engine, database):
    engine.execute(
        f"CREATE TABLE {database}.t (id UInt64, k String DEFAULT '') ENGINE = MergeTree ORDER BY id "
        "SETTINGS non_replicated_deduplication_window = 1000"
    )
    return f"{database}.t"


class Recorder:
    """A flush into the table that records its calls and can be made to fail."""

    def __init__(self, engine, table: str):
        self.engine = engine
        self.inner = engine_flush(engine, lambda key: table)
        self.calls: list[tuple[str, list[int], str]] = []
        self.fail: BaseException | None = None
        self.fail_after_insert = False
        self.gate: threading.Event | None = None

    def __call__(self, key: str, records: list[WalRecord], token: str) -> None:
        if self.gate is not None:
            self.gate.wait(10)
        self.calls.append((key, [r.lsn for r in records], token))
        if self.fail is not None and not self.fail_after_insert:
            raise self.fail
        self.inner(key, records, token)
        if self.fail is not None:
            raise self.fail


def rows(engine, table: str) -> list[int]:
    data = engine.execute(f"SELECT id FROM {table} ORDER BY id").data
    return [int(x) for x in data.split()]


def event(i: int) -> bytes:
    return b'{"id": %d}\n' % i


@pytest.fixture
def wal(tmp_path):
    log = WriteAheadLog(tmp_path / "wal")
    yield log
    log.close()


def start(wal, flush, **kw) -> Batcher:
    batcher = Batcher(wal, flush, **kw)
    batcher.recover()
    return batcher


def test_the_dedup_token_goes_in_a_settings_clause_and_deduplicates(engine, table):
    for _ in range(3):
        ins = engine.insert(
            f"INSERT INTO {table} SETTINGS insert_deduplication_token = {quote_string('tok-1')}",
            "JSONEachRow",
        )
        ins.write(event(1) + event(2))
        ins.finish()
    flush = engine_flush(engine, lambda key: table)
    batch = [WalRecord(3, KEY, event(3)), WalRecord(4, KEY, event(4))]
    flush(KEY, batch, "tok-2")
    flush(KEY, batch, "tok-2")  # the same batch twice: stored once
    assert rows(engine, table) == [1, 2, 3, 4]


def test_many_submits_make_one_insert_per_flush(engine, table, wal):
    flush = Recorder(engine, table)
    batcher = start(wal, flush, max_delay=0.3)
    lsns: list[int] = []
    lock = threading.Lock()

    def client(t: int) -> None:
        for i in range(25):
            lsn = batcher.submit(KEY, event(t * 100 + i))
            with lock:
                lsns.append(lsn)

    threads = [threading.Thread(target=client, args=(t,)) for t in range(8)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    for lsn in lsns:
        batcher.wait_flushed(lsn, timeout=10)
    assert len(flush.calls) <= 3
    assert rows(engine, table) == sorted(t * 100 + i for t in range(8) for i in range(25))
    key, batch_lsns, token = flush.calls[0]
    assert key == KEY and token == f"{wal.wal_id}:{KEY}:{batch_lsns[0]}-{batch_lsns[-1]}"
    assert batch_lsns == sorted(batch_lsns)
    batcher.close()
    assert wal.checkpoint_lsn >= max(lsns)
    assert batcher.pending() == 0


def test_each_key_is_batched_on_its_own(engine, database, wal):
    for name in ("a", "b"):
        engine.execute(f"CREATE TABLE {database}.{name} (id UInt64) ENGINE = MergeTree ORDER BY id")
    calls: list[str] = []
    inner = engine_flush(engine, lambda key: f"{database}.{key}")
    batcher = start(wal, lambda k, r, t: (calls.append(k), inner(k, r, t)), max_delay=0.2)
    last = [batcher.submit("ab"[i % 2], event(i)) for i in range(40)][-2:]
    for lsn in last:
        batcher.wait_flushed(lsn, 10)
    assert sorted(calls) == ["a", "b"]
    assert rows(engine, f"{database}.a") == list(range(0, 40, 2))
    assert rows(engine, f"{database}.b") == list(range(1, 40, 2))
    batcher.close()


def test_size_bounds_flush_before_the_delay(engine, table, wal):
    flush = Recorder(engine, table)
    batcher = start(wal, flush, max_delay=60, max_records=10)
    lsns = [batcher.submit(KEY, event(i)) for i in range(25)]
    batcher.wait_flushed(lsns[19], timeout=10)
    assert [len(c[1]) for c in flush.calls[:2]] == [10, 10]
    with pytest.raises(TimeoutError):
        batcher.wait_flushed(lsns[-1], timeout=0.2)  # 5 records wait for max_delay
    batcher.close()  # ... or for close
    assert rows(engine, table) == list(range(25))

    flush2 = Recorder(engine, table)
    batcher = start(wal, flush2, max_delay=60, max_bytes=100)
    lsns = [batcher.submit(KEY, event(100 + i) + b" " * 30) for i in range(5)]  # 41 bytes each
    batcher.wait_flushed(lsns[3], timeout=10)  # 123 bytes pending: a batch of 2 (82 bytes) goes
    assert [c[1] for c in flush2.calls] == [lsns[0:2], lsns[2:4]]
    batcher.close()


def test_wait_flushed_raises_the_flush_error_and_the_batch_is_retried(engine, table, wal, caplog):
    flush = Recorder(engine, table)
    flush.fail = RuntimeError("engine unavailable")
    batcher = start(wal, flush, max_delay=0.05, retry_backoff=0.05)
    lsns = [batcher.submit(KEY, event(i)) for i in range(5)]
    time.sleep(0.02)
    with pytest.raises(RuntimeError, match="engine unavailable"):
        batcher.wait_flushed(lsns[-1], timeout=10)
    assert wal.checkpoint_lsn < lsns[0]  # nothing flushed: nothing checkpointed
    flush.fail = None
    deadline = time.monotonic() + 10
    while True:  # the next retry succeeds
        try:
            batcher.wait_flushed(lsns[-1], timeout=10)
            break
        except RuntimeError:
            assert time.monotonic() < deadline
            time.sleep(0.05)
    assert rows(engine, table) == list(range(5))
    tokens = {c[2] for c in flush.calls}
    assert len(tokens) <= 2  # retries reuse the batch's token
    assert "engine unavailable" in caplog.text
    batcher.close()


def test_a_retried_batch_that_had_been_inserted_is_stored_once(engine, table, wal):
    flush = Recorder(engine, table)
    flush.fail = RuntimeError("connection lost after the insert")
    flush.fail_after_insert = True
    batcher = start(wal, flush, max_delay=0.05, retry_backoff=0.05)
    lsns = [batcher.submit(KEY, event(i)) for i in range(5)]
    while len(flush.calls) < 2:
        time.sleep(0.01)
    flush.fail = None
    _wait_ok(batcher, lsns[-1])
    assert len({c[2] for c in flush.calls}) == 1  # same batch, same token
    assert rows(engine, table) == list(range(5))
    batcher.close()


def _wait_ok(batcher: Batcher, lsn: int) -> None:
    deadline = time.monotonic() + 10
    while True:
        try:
            batcher.wait_flushed(lsn, timeout=10)
            return
        except RuntimeError:
            assert time.monotonic() < deadline
            time.sleep(0.02)


def test_replay_after_a_crash_between_insert_and_checkpoint_is_idempotent(engine, table, tmp_path):
    waldir = tmp_path / "wal"
    wal = WriteAheadLog(waldir)
    flush = Recorder(engine, table)
    flush.fail = RuntimeError("crash")  # inserts, then "dies" before the checkpoint and done record
    flush.fail_after_insert = True
    batcher = start(wal, flush, max_delay=0.05, retry_backoff=30)
    first = [batcher.submit(KEY, event(i)) for i in range(10)]
    while not flush.calls:
        time.sleep(0.01)
    flushed_token = flush.calls[0][2]
    later = [batcher.submit(KEY, event(100 + i)) for i in range(3)]  # pending at the crash, no intent yet
    batcher.close(flush=False)
    wal.close()
    assert rows(engine, table) == list(range(10))

    wal = WriteAheadLog(waldir)
    flush2 = Recorder(engine, table)
    batcher = Batcher(wal, flush2, max_delay=0.05)
    assert batcher.recover() == 13
    assert flush2.calls[0] == (KEY, first, flushed_token)  # the very same batch, not merged with later ones
    assert [lsn for call in flush2.calls[1:] for lsn in call[1]] == later
    assert rows(engine, table) == [*range(10), 100, 101, 102]
    batcher.close()
    wal.close()

    wal = WriteAheadLog(waldir)  # a second restart replays nothing
    flush3 = Recorder(engine, table)
    with Batcher(wal, flush3) as batcher:
        assert batcher.recover() == 0
    assert flush3.calls == []
    assert [r for r in wal.replay() if r.key != CONTROL_KEY] == []
    wal.close()


def test_flushed_batches_are_not_replayed_while_another_key_holds_the_checkpoint(engine, database, tmp_path):
    engine.execute(f"CREATE TABLE {database}.good (id UInt64) ENGINE = MergeTree ORDER BY id")
    waldir = tmp_path / "wal"
    wal = WriteAheadLog(waldir)
    inner = engine_flush(engine, lambda key: f"{database}.{key}")

    def flush(key, records, token):
        if key == "bad":
            raise RuntimeError("no such table")
        inner(key, records, token)

    batcher = start(wal, flush, max_delay=0.02, retry_backoff=30)
    stuck = batcher.submit("bad", event(0))
    good = []
    for i in range(5):
        good.append(batcher.submit("good", event(i)))
        batcher.wait_flushed(good[-1], timeout=10)
    assert wal.checkpoint_lsn < stuck  # held back by the failing key
    batcher.close(flush=False)
    wal.close()

    wal = WriteAheadLog(waldir)
    calls: list[str] = []
    batcher = Batcher(wal, lambda k, r, t: calls.append(k), max_delay=0.02)
    assert batcher.recover() == 1
    assert calls == ["bad"]  # the five flushed batches of "good" are skipped
    batcher.close()
    wal.close()
    assert rows(engine, f"{database}.good") == list(range(5))


def test_the_checkpoint_stops_below_the_oldest_unflushed_record(engine, table, wal):
    flush = Recorder(engine, table)
    gate = threading.Event()
    flush_other: list[str] = []

    def flush_fn(key, records, token):
        if key == "slow":
            gate.wait(10)
            return
        flush_other.append(key)
        flush(key, records, token)

    batcher = start(wal, flush_fn, max_delay=0.02, workers=2)
    slow = batcher.submit("slow", b"{}")
    fast = [batcher.submit(KEY, event(i)) for i in range(3)]
    batcher.wait_flushed(fast[-1], timeout=10)
    time.sleep(0.05)
    assert wal.checkpoint_lsn == slow - 1
    gate.set()
    batcher.wait_flushed(slow, timeout=10)
    batcher.close()
    assert wal.checkpoint_lsn >= fast[-1]


def test_close_flushes_everything_and_checkpoints(engine, table, tmp_path):
    waldir = tmp_path / "wal"
    wal = WriteAheadLog(waldir)
    batcher = start(wal, engine_flush(engine, lambda key: table), max_delay=60)
    last = [batcher.submit(KEY, event(i)) for i in range(50)][-1]
    batcher.close()
    with pytest.raises(RuntimeError, match="closed"):
        batcher.submit(KEY, event(99))
    wal.close()
    assert rows(engine, table) == list(range(50))
    with WriteAheadLog(waldir) as wal:
        assert wal.checkpoint_lsn >= last
        assert [r for r in wal.replay() if r.key != CONTROL_KEY] == []


def test_submit_async(engine, table, wal):
    batcher = start(wal, engine_flush(engine, lambda key: table), max_delay=0.05)

    async def main() -> list[int]:
        return await asyncio.gather(*(batcher.submit_async(KEY, event(i)) for i in range(30)))

    lsns = asyncio.run(main())
    batcher.wait_flushed(max(lsns), timeout=10)
    assert rows(engine, table) == list(range(30))
    batcher.close()


def test_contract_errors(engine, table, wal):
    batcher = Batcher(wal, engine_flush(engine, lambda key: table))
    with pytest.raises(RuntimeError, match="recover"):
        batcher.submit(KEY, event(1))
    assert batcher.recover() == 0
    with pytest.raises(RuntimeError, match="once"):
        batcher.recover()
    with pytest.raises(ValueError, match="reserved"):
        batcher.submit(CONTROL_KEY, b"{}")
    batcher.close()


def test_a_backlog_over_the_bound_refuses_new_events(engine, table, wal):
    flush = Recorder(engine, table)
    flush.fail = RuntimeError("engine down")
    batcher = start(wal, flush, max_delay=0.01, retry_backoff=0.05, max_pending_bytes=100)
    lsns = [batcher.submit(KEY, event(i) + b" " * 40) for i in range(2)]  # 51 bytes each
    with pytest.raises(BacklogFullError):
        batcher.submit(KEY, event(2))
    flush.fail = None
    _wait_ok(batcher, lsns[-1])
    batcher.wait_flushed(batcher.submit(KEY, event(2)), timeout=10)  # accepted again once written
    assert rows(engine, table) == [0, 1, 2]
    batcher.close()


def test_ndjson_chunks_separate_payloads_with_newlines():
    records = [
        WalRecord(1, "k", b'{"a":1}'),
        WalRecord(2, "k", b""),
        WalRecord(3, "k", b'{"a":2}\n{"a":3}\n'),
    ]
    assert b"".join(ndjson_chunks(records)) == b'{"a":1}\n{"a":2}\n{"a":3}\n'
    many = [WalRecord(i, "k", b"x" * 100) for i in range(100)]
    chunks = list(ndjson_chunks(many, chunk_bytes=1000))
    assert len(chunks) == 10 and b"".join(chunks) == b"".join(b"x" * 100 + b"\n" for _ in range(100))
