"""kill -9 of a real server during sustained event ingestion: after a restart every acknowledged event is
in the table exactly once (the write-ahead log is replayed with dedup tokens)."""

from __future__ import annotations

import itertools
import signal
import threading
import time

import httpx
import orjson
import pytest
from test_serve import TOKEN, Server

pytestmark = pytest.mark.slow

SCHEMA = "`id` UInt64 `json:$.id`, `sender` UInt8 `json:$.sender`, `note` String `json:$.note`"
ROWS_PER_REQUEST = 40


def send_until(server: Server, stop: threading.Event, ids, acked: set, sent: set, lock, sender: int) -> None:
    with httpx.Client(headers={"Authorization": f"Bearer {TOKEN}"}, timeout=10) as http:
        for n in itertools.count():
            if stop.is_set():
                return
            batch = [next(ids) for _ in range(ROWS_PER_REQUEST)]
            body = b"".join(orjson.dumps({"id": i, "sender": sender, "note": f"r{n}"}) + b"\n" for i in batch)
            with lock:
                sent.update(batch)
            wait = "&wait=true" if n % 5 == 0 else ""
            try:
                res = http.post(f"{server.url}/v0/events?name=stream{wait}", content=body)
            except httpx.HTTPError:
                return  # the server died under us: this request is not acknowledged
            if res.status_code in (200, 202):
                assert res.json()["successful_rows"] == ROWS_PER_REQUEST
                with lock:
                    acked.update(batch)


def test_acknowledged_events_survive_kill_9_exactly_once(tmp_path):
    data = tmp_path / "data"
    ids = itertools.count(1)
    id_lock = threading.Lock()

    def next_ids():
        while True:
            with id_lock:
                value = next(ids)
            yield value

    acked: set[int] = set()
    sent: set[int] = set()
    lock = threading.Lock()
    server = Server(data).wait_ready()
    assert server.post("/v0/datasources", data={"name": "stream", "schema": SCHEMA}).status_code == 200
    for _round in range(3):
        stop = threading.Event()
        senders = [
            threading.Thread(target=send_until, args=(server, stop, next_ids(), acked, sent, lock, k))
            for k in range(4)
        ]
        for t in senders:
            t.start()
        time.sleep(1.5)  # sustained ingestion, several flushes in
        before = len(acked)
        server.proc.send_signal(signal.SIGKILL)
        server.proc.wait(timeout=30)
        server.proc.stdout.close()
        stop.set()
        for t in senders:
            t.join(timeout=30)
        assert before > 0
        server = Server(data).wait_ready(timeout=60)  # the log is replayed before the server answers
        res = server.get(
            "/v0/sql", params={"q": "SELECT count() AS rows, uniqExact(id) AS ids FROM stream FORMAT JSON"}
        )
        got = res.json()["data"][0]
        assert got["rows"] == got["ids"], "an event was written twice"
        present = set(
            int(x)
            for x in server.get("/v0/sql", params={"q": "SELECT id FROM stream FORMAT TSV"}).text.split()
        )
        missing = acked - present
        assert not missing, f"{len(missing)} acknowledged events lost (of {len(acked)})"
        assert present <= sent
    code, out = server.stop(signal.SIGTERM)
    assert code == 0, out
