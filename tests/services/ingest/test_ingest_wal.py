"""The write-ahead log on its own: framing, order, rotation, checkpoints, torn tails, group commit."""

from __future__ import annotations

import asyncio
import json
import os
import threading
from pathlib import Path

import pytest

from tody.services.ingest import wal as wal_module
from tody.services.ingest.wal import WalCorruptError, WalError, WriteAheadLog


def payload(i: int, size: int = 0) -> bytes:
    return b'{"id": %d, "pad": "%s"}\n' % (i, b"x" * size)


@pytest.fixture
def waldir(tmp_path) -> Path:
    return tmp_path / "wal"


def test_append_then_replay_in_lsn_order_and_lsns_continue_after_reopen(waldir):
    with WriteAheadLog(waldir) as wal:
        lsns = [wal.append(f"ws/ds{i % 3}", payload(i)) for i in range(50)]
        assert lsns == list(range(1, 51))
        assert wal.last_lsn == 50
        records = list(wal.replay())
    assert [r.lsn for r in records] == lsns
    assert [r.key for r in records] == [f"ws/ds{i % 3}" for i in range(50)]
    assert [r.payload for r in records] == [payload(i) for i in range(50)]

    with WriteAheadLog(waldir) as wal:
        assert [r.payload for r in wal.replay()] == [payload(i) for i in range(50)]
        assert wal.append("ws/ds0", b"next") == 51
        assert list(wal.replay())[-1].payload == b"next"


def test_keys_and_payloads_round_trip_any_bytes(waldir):
    odd = [b"", b"\0\n\xff" * 100, bytes(range(256)) * 400]
    with WriteAheadLog(waldir) as wal:
        for i, data in enumerate(odd):
            wal.append(f"clé-{i}/ünïcode", data)
    with WriteAheadLog(waldir) as wal:
        got = list(wal.replay())
    assert [r.payload for r in got] == odd
    assert got[1].key == "clé-1/ünïcode"


def test_segments_rotate_by_size_and_replay_crosses_them(waldir):
    with WriteAheadLog(waldir, segment_bytes=4096) as wal:
        for i in range(200):
            wal.append("k", payload(i, 100))
        assert len(wal.segments()) > 5
        assert all(p.stat().st_size < 4096 + 300 for p in wal.segments())
    with WriteAheadLog(waldir, segment_bytes=4096) as wal:
        assert [r.lsn for r in wal.replay()] == list(range(1, 201))
        assert wal.append("k", b"more") == 201


def test_checkpoint_deletes_covered_segments_and_survives_reopen(waldir):
    with WriteAheadLog(waldir, segment_bytes=4096) as wal:
        for i in range(200):
            wal.append("k", payload(i, 100))
        before = wal.segments()
        wal.checkpoint(150)
        after = wal.segments()
        assert len(after) < len(before)
        assert all(not p.exists() for p in before if p not in after)
        assert [r.lsn for r in wal.replay()] == list(range(151, 201))
        with pytest.raises(ValueError):
            wal.checkpoint(201)  # beyond what is durable
        wal.checkpoint(100)  # going back is a no-op
        assert wal.checkpoint_lsn == 150
        wal_id = wal.wal_id
    doc = json.loads((waldir / "checkpoint.json").read_text())
    assert doc["checkpoint_lsn"] == 150 and doc["wal_id"] == wal_id
    with WriteAheadLog(waldir, segment_bytes=4096) as wal:
        assert wal.wal_id == wal_id
        assert wal.checkpoint_lsn == 150
        assert [r.lsn for r in wal.replay()] == list(range(151, 201))
        wal.checkpoint(200)
        assert list(wal.replay()) == []
        assert len(wal.segments()) == 1  # the active segment stays
    with WriteAheadLog(waldir) as wal:
        assert wal.append("k", b"x") == 201  # lsns never go back, even with every record checkpointed


def test_segments_left_behind_by_a_crash_after_checkpoint_are_deleted_on_open(waldir):
    with WriteAheadLog(waldir, segment_bytes=2048) as wal:
        for i in range(100):
            wal.append("k", payload(i, 100))
        stale = [(p, p.read_bytes()) for p in wal.segments()[:-1]]
        wal.checkpoint(100)
    for path, data in stale:  # as if the unlinks were lost
        path.write_bytes(data)
    with WriteAheadLog(waldir, segment_bytes=2048) as wal:
        assert not any(p.exists() for p, _ in stale)
        assert list(wal.replay()) == []


def _last_segment(waldir: Path) -> Path:
    return sorted(waldir.glob("*.wal"))[-1]


@pytest.mark.parametrize("cut", [1, 5, 9, 30])
def test_a_torn_last_record_is_cut_on_open_and_never_replayed(waldir, cut):
    with WriteAheadLog(waldir) as wal:
        for i in range(10):
            wal.append("k", payload(i, 20))
    seg = _last_segment(waldir)
    full = seg.stat().st_size
    with open(seg, "r+b") as f:
        f.truncate(full - cut)
    with WriteAheadLog(waldir) as wal:
        assert [r.lsn for r in wal.replay()] == list(range(1, 10))
        assert wal.append("k", b"after") == 10
        assert [r.payload for r in wal.replay()][-1] == b"after"
    with WriteAheadLog(waldir) as wal:
        assert len(list(wal.replay())) == 10


@pytest.mark.parametrize("tail", [b"\x07", b"garbage" * 10, b"\0" * 4096, b"\xff\xff\xff\x7f" + b"\0" * 12])
def test_garbage_after_the_last_record_is_cut(waldir, tail):
    with WriteAheadLog(waldir) as wal:
        for i in range(5):
            wal.append("k", payload(i))
    seg = _last_segment(waldir)
    good = seg.stat().st_size
    with open(seg, "ab") as f:
        f.write(tail)
    with WriteAheadLog(waldir) as wal:
        assert seg.stat().st_size == good
        assert [r.payload for r in wal.replay()] == [payload(i) for i in range(5)]
        assert wal.append("k", b"x") == 6


def _record_offsets(seg: Path) -> list[int]:
    data = seg.read_bytes()
    offsets, pos = [], 16
    while pos < len(data):
        offsets.append(pos)
        pos += 8 + int.from_bytes(data[pos : pos + 4], "little")
    return offsets


def test_a_crc_mismatch_in_the_active_segment_cuts_from_that_record(waldir, caplog):
    with WriteAheadLog(waldir) as wal:
        for i in range(10):
            wal.append("k", payload(i, 20))
    seg = _last_segment(waldir)
    offset = _record_offsets(seg)[6]
    data = bytearray(seg.read_bytes())
    data[offset + 20] ^= 0x01  # one bit inside record lsn 7
    seg.write_bytes(bytes(data))
    with WriteAheadLog(waldir) as wal:
        assert [r.lsn for r in wal.replay()] == list(range(1, 7))
    assert "CRC mismatch" in caplog.text


def test_damage_in_a_sealed_segment_is_reported_not_skipped(waldir):
    with WriteAheadLog(waldir, segment_bytes=1024) as wal:
        for i in range(60):
            wal.append("k", payload(i, 40))
        first = wal.segments()[0]
    data = bytearray(first.read_bytes())
    data[_record_offsets(first)[1] + 12] ^= 0x40
    first.write_bytes(bytes(data))
    with (
        WriteAheadLog(waldir, segment_bytes=1024) as wal,
        pytest.raises(WalCorruptError, match="CRC mismatch"),
    ):
        list(wal.replay())


def test_a_missing_segment_is_reported(waldir):
    with WriteAheadLog(waldir, segment_bytes=1024) as wal:
        for i in range(60):
            wal.append("k", payload(i, 40))
        segments = wal.segments()
    segments[1].unlink()
    with WriteAheadLog(waldir, segment_bytes=1024) as wal, pytest.raises(WalCorruptError):
        list(wal.replay())
    segments[0].unlink()
    with pytest.raises(WalCorruptError, match="missing"):
        WriteAheadLog(waldir, segment_bytes=1024)


def test_a_segment_whose_creation_was_torn_is_recreated(waldir):
    with WriteAheadLog(waldir) as wal:
        for i in range(5):
            wal.append("k", payload(i))
    (waldir / f"{6:020d}.wal").write_bytes(b"TODY")  # crash while writing a new segment's header
    with WriteAheadLog(waldir) as wal:
        assert wal.append("k", b"x") == 6
        assert [r.lsn for r in wal.replay()] == list(range(1, 7))


def test_one_process_per_directory(waldir):
    with WriteAheadLog(waldir), pytest.raises(WalError, match="in use"):
        WriteAheadLog(waldir)
    WriteAheadLog(waldir).close()  # released on close


def test_group_commit_shares_fsyncs_between_concurrent_appenders(waldir, monkeypatch):
    syncs = []
    real = wal_module._datasync
    monkeypatch.setattr(wal_module, "_datasync", lambda fd: (syncs.append(fd), real(fd)))
    threads, per_thread = 32, 40
    results: list[int] = []
    lock = threading.Lock()
    start = threading.Barrier(threads)

    with WriteAheadLog(waldir) as wal:

        def work(t: int) -> None:
            start.wait()
            for i in range(per_thread):
                lsn = wal.append(f"k{t % 4}", payload(t * 1000 + i))
                with lock:
                    results.append(lsn)

        pool = [threading.Thread(target=work, args=(t,)) for t in range(threads)]
        for th in pool:
            th.start()
        for th in pool:
            th.join()
        assert sorted(results) == list(range(1, threads * per_thread + 1))
        assert wal.stats.appends == threads * per_thread
        assert len(syncs) == wal.stats.groups
        assert len(syncs) < threads * per_thread / 4  # shared: many records per fsync
        replayed = {r.payload for r in wal.replay()}
    assert replayed == {payload(t * 1000 + i) for t in range(threads) for i in range(per_thread)}


def test_a_lone_appender_does_not_wait_for_the_window(waldir):
    with WriteAheadLog(waldir, group_commit_window=5.0) as wal:
        for i in range(5):
            wal.append("k", payload(i))  # would take 25 s if the window applied to single records
        assert wal.stats.groups == 5


def test_append_async_does_not_block_the_loop_and_groups_commits(waldir):
    async def main(wal: WriteAheadLog) -> list[int]:
        ticks = 0

        async def ticker() -> None:
            nonlocal ticks
            while True:
                ticks += 1
                await asyncio.sleep(0)

        t = asyncio.create_task(ticker())
        lsns = await asyncio.gather(*(wal.append_async("k", payload(i)) for i in range(200)))
        t.cancel()
        assert ticks > 0
        return lsns

    with WriteAheadLog(waldir) as wal:
        lsns = asyncio.run(main(wal))
        assert sorted(lsns) == list(range(1, 201))
        assert wal.stats.groups < 200
        assert [r.payload for r in wal.replay()][lsns[7] - 1] == payload(7)


def test_the_listener_sees_each_durable_group_in_order(waldir):
    seen: list[int] = []
    with WriteAheadLog(waldir) as wal:
        assert wal.set_listener(lambda records: seen.extend(r.lsn for r in records)) == 0
        threads = [
            threading.Thread(target=lambda: [wal.append("k", b"x") for _ in range(50)]) for _ in range(4)
        ]
        for th in threads:
            th.start()
        for th in threads:
            th.join()
        wal.append_nowait("k", b"y")
    assert seen == list(range(1, 202))


def test_an_io_failure_stops_the_log_instead_of_acknowledging(waldir, monkeypatch):
    with WriteAheadLog(waldir) as wal:
        wal.append("k", b"ok")

        def broken(fd: int) -> None:
            raise OSError(5, "Input/output error")

        monkeypatch.setattr(wal_module, "_datasync", broken)
        with pytest.raises(WalError, match="I/O failed"):
            wal.append("k", b"lost")
        monkeypatch.undo()
        with pytest.raises(WalError):
            wal.append("k", b"after")
    with WriteAheadLog(waldir) as wal:  # a restart recovers what was acknowledged
        assert next(r.payload for r in wal.replay()) == b"ok"


def test_closed_log_refuses_appends(waldir):
    wal = WriteAheadLog(waldir)
    wal.close()
    wal.close()
    with pytest.raises(WalError, match="closed"):
        wal.append("k", b"x")


def test_files_on_disk(waldir):
    with WriteAheadLog(waldir) as wal:
        wal.append("ws/ds", b"abc")
    names = sorted(os.listdir(waldir))
    assert names == ["00000000000000000001.wal", "LOCK", "checkpoint.json"]
    data = (waldir / names[0]).read_bytes()
    assert data[:8] == b"TODYWAL1" and int.from_bytes(data[8:16], "little") == 1
    assert len(data) == 16 + 8 + 2 + len("ws/ds") + 3 + 8
