"""Ingestion: the Events API's write-ahead log and batcher (bulk imports and quarantine come later)."""

from tody.services.ingest.batcher import CONTROL_KEY, BacklogFullError, Batcher, engine_flush, ndjson_chunks
from tody.services.ingest.wal import WalCorruptError, WalError, WalRecord, WalStats, WriteAheadLog

__all__ = [
    "CONTROL_KEY",
    "BacklogFullError",
    "Batcher",
    "WalCorruptError",
    "WalError",
    "WalRecord",
    "WalStats",
    "WriteAheadLog",
    "engine_flush",
    "ndjson_chunks",
]
