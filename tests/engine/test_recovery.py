from tody.engine.recovery import repair_deduplication_logs


def test_phantom_dedup_entries_are_dropped_and_real_ones_kept(tmp_path):
    table = tmp_path / "store" / "abc" / "abc123"
    logs = table / "deduplication_logs"
    logs.mkdir(parents=True)
    for part in ("all_1_1_0", "all_2_2_0"):
        (table / part).mkdir()
    log = logs / "deduplication_log_1.txt"
    log.write_text("1\tall_1_1_0\tblock-a\n1\tall_2_2_0\tblock-b\n1\tall_3_3_0\tblock-c\n1\tall_4_")
    assert repair_deduplication_logs(tmp_path) == ["abc123/all_3_3_0"]
    lines = log.read_text().splitlines()
    assert lines[-1] == "2\tall_3_3_0\tblock-c"  # the phantom is cancelled
    assert "1\tall_4_" not in log.read_text()  # the torn last record is cut
    assert repair_deduplication_logs(tmp_path) == []  # idempotent
