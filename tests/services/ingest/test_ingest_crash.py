"""A real crash: a process acknowledging events is killed with SIGKILL, restarted, killed again; a last
one recovers and every acknowledged event is in the table exactly once.

ClickHouse's non-replicated deduplication log has a crash window: an INSERT writes its block id to
`deduplication_logs/` before it renames its part into place. A process killed in between leaves a block
id without a part; the replay of that batch, with the same token, is then "deduplicated" into nothing
(seen here in about 1 run in 15). `repair_deduplication_logs` below removes such entries before the
engine opens the directory (`tody.engine.recovery`, run by `ChdbEngine` at start; called explicitly
here too, so the test shows what it repaired).
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time

import pytest

pytestmark = pytest.mark.slow

CHILD = (
    "from tody.engine.recovery import repair_deduplication_logs\n"
    + r"""
import sys, threading
from tody.engine.chdb import ChdbEngine
from tody.services.ingest.batcher import Batcher, engine_flush
from tody.services.ingest.wal import WriteAheadLog

root, round_no, mode = sys.argv[1], int(sys.argv[2]), sys.argv[3]
for entry in repair_deduplication_logs(root + "/engine"):
    print("REPAIRED", entry, flush=True)
engine = ChdbEngine(root + "/engine", pool_size=1, admin_pool_size=2)
engine.execute("CREATE DATABASE IF NOT EXISTS crash ENGINE = Atomic")
engine.execute(
    "CREATE TABLE IF NOT EXISTS crash.events (id UInt64) ENGINE = MergeTree ORDER BY id "
    "SETTINGS non_replicated_deduplication_window = 1000"
)
wal = WriteAheadLog(root + "/wal", segment_bytes=64 << 10)
batcher = Batcher(wal, engine_flush(engine, lambda key: "crash.events"), max_delay=0.01, max_records=150)
print("RECOVERED", batcher.recover(timeout=30), flush=True)
if mode == "check":
    ids = engine.execute("SELECT id FROM crash.events ORDER BY id").data.split()
    sys.stdout.write("".join(f"ROW {int(x)}\n" for x in ids))
    batcher.close()
    wal.close()
    engine.close()
    sys.exit(0)
out = threading.Lock()

def client(t):
    i = 0
    while True:
        request = round_no * 10**8 + t * 10**6 + i
        rows = 1 + i % 3  # requests of 1 to 3 rows: row ids request*10 + j
        batcher.submit("crash/events", b"".join(b'{"id": %d}\n' % (request * 10 + j) for j in range(rows)))
        with out:
            sys.stdout.write(f"ACK {request} {rows}\n")
            sys.stdout.flush()
        i += 1

for t in range(4):
    threading.Thread(target=client, args=(t,), daemon=True).start()
threading.Event().wait()
"""
)


def _spawn(root, round_no: int, mode: str) -> subprocess.Popen:
    with open(root / f"stderr-{round_no}-{mode}.txt", "wb") as stderr:
        return subprocess.Popen(
            [sys.executable, "-c", CHILD, str(root), str(round_no), mode],
            stdout=subprocess.PIPE,
            stderr=stderr,
            text=True,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )


def _rows_of(line: str) -> set[int]:
    _, request, rows = line.split()
    return {int(request) * 10 + j for j in range(int(rows))}


def test_acknowledged_events_survive_sigkill_exactly_once(tmp_path):
    rng = random.Random(7)
    expected: set[int] = set()
    deadline = time.monotonic() + 60
    for round_no in range(1, 6):
        proc = _spawn(tmp_path, round_no, "write")
        kill_after = rng.randint(300, 1500)
        acked: list[str] = []
        try:
            assert proc.stdout is not None
            for line in proc.stdout:
                if line.startswith("REPAIRED "):
                    print(line.strip())  # shown with -s: how often the engine's crash window was hit
                if line.startswith("ACK "):
                    acked.append(line)
                    if len(acked) >= kill_after:
                        os.kill(proc.pid, signal.SIGKILL)
                        break
                assert time.monotonic() < deadline, "the writer did not acknowledge in time"
            acked += [line for line in proc.stdout.read().splitlines() if line.startswith("ACK ")]
        finally:
            proc.kill()
            proc.wait()
            proc.stdout.close()
        assert proc.returncode == -signal.SIGKILL
        assert len(acked) >= kill_after, (tmp_path / f"stderr-{round_no}-write.txt").read_text()[-2000:]
        for line in acked:
            expected |= _rows_of(line)

    check = _spawn(tmp_path, 99, "check")
    output, _ = check.communicate(timeout=60)
    assert check.returncode == 0, (tmp_path / "stderr-99-check.txt").read_text()[-2000:]
    print(*(line for line in output.splitlines() if line.startswith("REPAIRED ")), sep="\n")
    stored = [int(line.split()[1]) for line in output.splitlines() if line.startswith("ROW ")]
    assert len(stored) == len(set(stored)), "a row was stored twice"
    missing = expected - set(stored)
    assert not missing, f"{len(missing)} acknowledged rows lost, e.g. {sorted(missing)[:5]}"
