"""The report of bench/ingest.py: one table of figures against the raw engine, then notes per scenario."""

from __future__ import annotations

import json


def _fmt(value, unit: str = "", digits: int = 0) -> str:
    if value is None:
        return "-"
    return f"{value:,.{digits}f}{unit}"


def report(results: dict) -> list[tuple]:
    """(scenario, metric, tody, raw, ratio, goal, met, server RSS, raw RSS) rows."""
    table = []

    def row(scenario, metric, res, tody, raw, unit="", digits=0, goal="", met=None):
        r = tody / raw if tody is not None and raw else None
        table.append(
            (
                scenario,
                metric,
                _fmt(tody, unit, digits),
                _fmt(raw, unit, digits),
                _fmt(r, "x", 2),
                goal,
                "-" if met is None else ("yes" if met else "NO"),
                _fmt(res.get("tody_rss_mb"), " MB"),
                _fmt(res.get("raw_rss_mb"), " MB"),
            )
        )

    def ratio_at_least(res, tody_key, raw_key, goal):
        tody, raw = res.get(tody_key), res.get(raw_key)
        return None if tody is None or not raw else tody / raw >= goal

    def at_most(value, goal):
        return None if value is None else value <= goal

    if res := results.get("events_batch"):
        g = res.get
        ok = ratio_at_least(res, "tody_rows_s", "raw_rows_s", 0.8)
        row(
            "events_batch",
            "rows/s (acked)",
            res,
            g("tody_rows_s"),
            g("raw_rows_s"),
            goal=">= 0.8x raw",
            met=ok,
        )
        mbs = g("tody_mb_s")
        row(
            "events_batch",
            "MB/s (acked)",
            res,
            mbs,
            g("raw_mb_s"),
            "",
            1,
            ">= 50 MB/s",
            None if mbs is None else mbs >= 50,
        )
        row("events_batch", "request p50", res, g("tody_p50_ms"), g("raw_p50_ms"), " ms", 1)
        after = g("visible_after_s")
        row(
            "events_batch",
            "last ack -> all visible",
            res,
            None if after is None else after * 1000,
            None,
            " ms",
        )
        row("events_batch", "rows/s, start to visible", res, g("visible_rows_s"), g("raw_rows_s"))
    if res := results.get("events_single"):
        g = res.get
        rps = g("tody_requests_s")
        met = None if rps is None else rps >= 2000
        row("events_single", "requests/s", res, rps, g("raw_requests_s"), goal=">= 2,000", met=met)
        row("events_single", "request p50", res, g("tody_p50_ms"), g("raw_p50_ms"), " ms", 2)
        row("events_single", "request p99", res, g("tody_p99_ms"), g("raw_p99_ms"), " ms", 2)
        row("events_single", "202 -> visible p50", res, g("visible_p50_ms"), None, " ms")
        v = g("visible_p99_ms")
        row(
            "events_single",
            "202 -> visible p99",
            res,
            v,
            None,
            " ms",
            goal="<= 1,000 ms",
            met=at_most(v, 1000),
        )
    for fmt in ("csv", "parquet"):
        if res := results.get(f"bulk_{fmt}"):
            g = res.get
            ok = ratio_at_least(res, "tody_rows_s", "raw_rows_s", 0.8)
            row(f"bulk_{fmt}", "rows/s", res, g("tody_rows_s"), g("raw_rows_s"), goal=">= 0.8x raw", met=ok)
            row(f"bulk_{fmt}", "MB/s", res, g("tody_mb_s"), g("raw_mb_s"), "", 1)
    return table


def print_report(results: dict, args) -> None:
    headers = ("scenario", "metric", "tody", "raw", "ratio", "goal", "met", "server RSS", "raw RSS")
    rows = report(results)
    widths = [max(len(str(r[i])) for r in [headers, *rows]) for i in range(len(headers))]
    print()
    for r in [headers, *rows]:
        cells = zip(r, widths, strict=True)
        print("  ".join(str(c).ljust(w) if i < 2 else str(c).rjust(w) for i, (c, w) in enumerate(cells)))
    print()
    for name, res in results.items():
        g = res.get
        if name == "events_batch" and "rows" in res:
            gz = " (sent gzipped)" if args.gzip else ""
            print(
                f"{name}: {g('rows'):,} rows in 10k-row requests, {g('mb')} MB NDJSON{gz}, {g('clients')} "
                f"clients; acked {g('acked_rows', '-')}, visible {g('visible_rows', '-')}"
            )
        elif name == "events_single" and "requests" in res:
            print(
                f"{name}: {g('requests'):,} requests, {g('clients')} clients; raw = {g('raw_inserts', 0):,} 1-row "
                f"INSERTs ({g('raw_errors', '-')} errors); tracked events {g('sampled', '-')} (seen "
                f"{g('sampled_visible', '-')}), poll query p50 {_fmt(g('poll_p50_ms'), ' ms', 1)}, "
                f"rows visible at the end {g('visible_rows', '-')}"
            )
        elif name.startswith("bulk_") and "rows" in res:
            print(
                f"{name}: {g('rows'):,} rows, {g('mb')} MB file, {g('upload')}; tody {_fmt(g('tody_s'), ' s', 2)} "
                f"(import after spooling {_fmt(g('import_s'), ' s', 2)} per datasources_ops_log; stored "
                f"{g('stored', '-')}, quarantined {g('quarantined', '-')}), raw {_fmt(g('raw_s'), ' s', 2)}"
            )
        if g("server_cpu") is not None:
            client = f", benchmark client {g('client_cpu'):.2f} cores" if g("client_cpu") is not None else ""
            print(f"{name}: server used {g('server_cpu'):.2f} cores during the measured phase{client}")
        if g("statuses"):
            print(
                f"{name}: statuses {g('statuses')}, retried 429s {g('rate_limited', 0)}, "
                f"retried 503s {g('backlogged', 0)}"
            )
        if g("first_error"):
            print(f"{name}: first error: {g('first_error')}")
        if g("skipped"):
            print(f"{name}: tody side not measured: {g('skipped')}")
        if g("failed"):
            print(f"{name}: FAILED: {g('failed')}")
    print("\n" + json.dumps(results, default=str))
