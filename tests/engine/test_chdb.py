import threading

import orjson
import pytest

from tody.engine.base import EngineError


def test_trusted_execute_and_untrusted_query(engine, database):
    engine.execute(f"CREATE TABLE {database}.t (a UInt64) ENGINE = MergeTree ORDER BY a")
    engine.execute(f"INSERT INTO {database}.t SELECT number FROM numbers(1000)")
    res = engine.query(f"SELECT count() AS c, sum(a) AS s FROM {database}.t", "JSON")
    doc = orjson.loads(res.data)
    assert doc["data"] == [{"c": 1000, "s": 499500}]  # 64-bit integers as numbers
    assert res.statistics.rows_read == 1000
    assert res.statistics.elapsed > 0


def test_query_connections_are_read_only_and_cannot_be_loosened(engine, database):
    engine.execute(f"CREATE TABLE {database}.t (a UInt64) ENGINE = MergeTree ORDER BY a")
    for sql in (
        f"INSERT INTO {database}.t VALUES (1)",
        f"DROP TABLE {database}.t",
        "SET readonly = 0",
        "SELECT 1 SETTINGS max_execution_time = 1000",
        "SELECT * FROM file('/etc/passwd', 'LineAsString')",
        "SELECT * FROM Python(engine)",
    ):
        with pytest.raises(EngineError):
            engine.query(sql)
    assert engine.query(f"SELECT count() FROM {database}.t", "CSV").data == b"0\n"


def test_limits_stop_resource_bombs(engine):
    with pytest.raises(EngineError) as err:
        engine.query("SELECT count() FROM numbers(1000000000000)")
    assert err.value.is_user_error


def test_insert_stream_and_streamed_read(engine, database):
    engine.execute(f"CREATE TABLE {database}.t (a UInt64, s String) ENGINE = MergeTree ORDER BY a")
    ins = engine.insert(f"INSERT INTO {database}.t", "JSONEachRow")
    for i in range(10):
        ins.write(b"".join(b'{"a": %d, "s": "x"}\n' % (i * 100 + j) for j in range(100)))
    ins.finish()
    stream = engine.stream(f"SELECT a FROM {database}.t ORDER BY a", "CSV")
    body = b"".join(stream)
    assert body.count(b"\n") == 1000
    assert engine.pool_in_use() == 0


def test_stream_error_surfaces_before_first_byte(engine):
    with pytest.raises(EngineError) as err:
        engine.stream("SELECT * FROM no_such_table_anywhere", "CSV")
    assert err.value.code == 60
    assert engine.pool_in_use() == 0


def test_pool_runs_queries_in_parallel_threads(engine):
    errors = []

    def run():
        try:
            for _ in range(20):
                assert engine.query("SELECT 1", "CSV").data == b"1\n"
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=run) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors


def test_classify_uses_the_engine_parser(engine):
    c = engine.classify("SELECT 1; SELECT 2")
    assert c.statement_count == 2
    assert engine.classify("SELECT 1").read_only
    assert not engine.classify("INSERT INTO x VALUES (1)").read_only


def _assert_clean(engine):
    for _ in range(engine.pool_size() * 2):
        assert engine.query("SELECT 42 AS x", "JSONEachRow").data == b'{"x":42}\n'
        assert b"".join(engine.stream("SELECT 42 AS x", "CSV")) == b"42\n"


@pytest.mark.parametrize("fmt", ["JSON", "CSV"])
def test_a_failed_query_never_leaks_output_into_the_next(engine, fmt):
    # chDB keeps a failed query's partial output in its connection and prepends it to the next
    # result; the pool must replace such a connection.
    failing = "SELECT number, throwIf(number = 300000) FROM numbers(400000)"
    with pytest.raises(EngineError):
        engine.query(failing, fmt)
    _assert_clean(engine)
    with pytest.raises(EngineError):  # fails after the first chunks went out
        b"".join(engine.stream(failing, fmt))
    _assert_clean(engine)


def test_an_abandoned_stream_does_not_leak_into_the_next_query(engine):
    stream = engine.stream("SELECT number FROM numbers(5000000)", "CSV")
    next(iter(stream))
    stream.close()
    for _ in range(engine.pool_size() * 2):
        assert engine.query("SELECT 7 AS x", "CSV").data == b"7\n"
    assert engine.pool_in_use() == 0
