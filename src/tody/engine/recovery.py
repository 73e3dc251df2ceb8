"""Crash recovery for the embedded engine's files, run before chDB opens the data path.

ClickHouse's non-replicated deduplication log has a crash window: an INSERT writes its block id to
`deduplication_logs/` before it renames its part into place. A process killed in between leaves a
block id without a part, and the replay of that batch with the same `insert_deduplication_token` is
then silently "deduplicated" into nothing — an acknowledged batch lost (seen in about 1 run in 15 of
the WAL crash test). Replicated tables on a ClickHouse server do not have this window.
"""

from __future__ import annotations

import re
from pathlib import Path

_PART = re.compile(r"^([^_]+)_(\d+)_(\d+)_(\d+)(?:_(\d+))?$")


def repair_deduplication_logs(engine_path) -> list[str]:
    """Drop deduplication-log entries whose part never reached the disk. Run before the engine opens.

    Block numbers are allocated, logged and committed under one lock per table, so a part whose block id
    was logged but never committed holds the table's highest block number: an entry above the highest
    block of every part on disk is such a phantom. It is cancelled with a DROP record (the log's own
    format: `op<TAB>part<TAB>block_id`, op 1 = ADD, 2 = DROP); an incomplete last line is cut."""
    repaired: list[str] = []
    for logs in Path(engine_path).rglob("deduplication_logs"):
        top = -1
        for entry in logs.parent.iterdir():
            match = _PART.match(entry.name)
            if match and entry.is_dir():
                top = max(top, int(match.group(3)))
        files = sorted(logs.glob("deduplication_log_*.txt"), key=lambda p: int(p.stem.rsplit("_", 1)[1]))
        live: dict[str, str] = {}
        for path in files:
            data = path.read_bytes()
            if data and not data.endswith(b"\n"):  # a record cut by the crash: the engine cannot read it
                data = data[: data.rfind(b"\n") + 1]
                path.write_bytes(data)
            for line in data.decode().splitlines():
                fields = line.split("\t")
                if len(fields) == 3 and fields[0] == "1":
                    live[fields[2]] = fields[1]
                elif len(fields) == 3 and fields[0] == "2":
                    live.pop(fields[2], None)
        phantoms = [
            (part, block)
            for block, part in live.items()
            if (match := _PART.match(part)) and int(match.group(3)) > top
        ]
        if phantoms:
            with open(files[-1], "a") as f:
                f.writelines(f"2\t{part}\t{block}\n" for part, block in phantoms)
            repaired += [f"{logs.parent.name}/{part}" for part, _ in phantoms]
    return repaired
