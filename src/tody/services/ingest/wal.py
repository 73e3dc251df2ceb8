"""A write-ahead log for the Events API: an event is acknowledged once it is here (DESIGN.md decision 6).

On-disk layout under `directory` (normally `<data_dir>/wal/`):

    LOCK                        flock'd by the open log: one process per directory
    checkpoint.json             {"format": 1, "wal_id": "<uuid4 hex>", "checkpoint_lsn": N}
                                replaced atomically (write tmp, fsync, rename, fsync directory)
    <first lsn, 20 digits>.wal  segments; the one with the highest first lsn is the active one

A segment starts with a 16-byte header, `b"TODYWAL1"` + u64 first lsn (equal to the file name), then
records, all integers little-endian:

    u32 length      bytes that follow the crc field (2 + key + payload + 8)
    u32 crc32       zlib CRC-32 of those `length` bytes
    u16 key length, key (UTF-8), payload (opaque bytes), u64 lsn

LSNs start at 1 and are consecutive across segments. The lsn is a trailer so that appenders compute the
CRC of key and payload in their own thread; the writer only extends it with the 8 lsn bytes.

A single writer thread does group commit: it takes every record queued within `group_commit_window`,
writes them with one write(), calls fdatasync() once and then wakes every appender. Records that arrive
while a group is being synced form the next group. The window is waited for only until the group is as
large as the previous one: a lone appender never pays it, and N appenders in a loop go as soon as all N
are back.
On open, the active segment is scanned and cut at the first incomplete or invalid record (a torn tail:
nothing after the last fsync was ever acknowledged). An invalid record in a sealed segment, or a gap in
the lsns, is real corruption and raises `WalCorruptError`.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import json
import logging
import os
import struct
import threading
import time
import uuid
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger(__name__)

SEGMENT_MAGIC = b"TODYWAL1"
SEGMENT_SUFFIX = ".wal"
CHECKPOINT_FILE = "checkpoint.json"
LOCK_FILE = "LOCK"
MAX_KEY_BYTES = 0xFFFF
MAX_PAYLOAD_BYTES = (1 << 31) - 1

_SEG_HEADER = struct.Struct("<8sQ")  # magic, first lsn
_REC_HEADER = struct.Struct("<II")  # length, crc32
_KEY_LEN = struct.Struct("<H")
_LSN = struct.Struct("<Q")
_MIN_BODY = _KEY_LEN.size + _LSN.size
_MAX_BODY = _MIN_BODY + MAX_KEY_BYTES + MAX_PAYLOAD_BYTES
_GROUP_BYTES = 16 << 20  # stop waiting for the window once a group holds this much

Listener = Callable[[list["WalRecord"]], None]


class WalError(Exception):
    """The log cannot take or give records (closed, I/O failure, in use by another process)."""


class WalCorruptError(WalError):
    """Acknowledged records are damaged or missing; an operator must look at the directory."""


@dataclass(frozen=True)
class WalRecord:
    lsn: int  # monotonically increasing sequence number
    key: str  # the target, e.g. "<workspace_id>/<datasource_id>"
    payload: bytes  # opaque bytes (NDJSON of one request); never parsed here


@dataclass
class WalStats:
    appends: int = 0  # records made durable
    groups: int = 0  # group commits (one write each)
    fsyncs: int = 0  # fdatasync/fsync calls, including rotation and checkpoints
    bytes_written: int = 0
    segments_created: int = 0
    segments_deleted: int = 0


class _Group:
    """Records that will be written and synced together."""

    __slots__ = ("callbacks", "done", "entries", "error", "first_lsn", "nbytes", "opened")

    def __init__(self) -> None:
        self.entries: list[tuple[str, bytes, bytes, int]] = []  # key, prefix, payload, partial crc
        self.nbytes = 0
        self.opened = 0.0
        self.done = threading.Event()
        self.first_lsn = 0
        self.error: BaseException | None = None
        self.callbacks: list[tuple[int, Callable[[int, BaseException | None], None]]] = []


class _Reader:
    """Reads one segment; stops at the end, at `limit`, or at the first invalid record (`problem`)."""

    def __init__(self, path: Path, first_lsn: int, limit: int | None = None):
        self.path = path
        self.first_lsn = first_lsn
        self.limit = limit
        self.end = _SEG_HEADER.size  # offset just past the last valid record
        self.last_lsn = first_lsn - 1
        self.problem: str | None = None

    def records(self) -> Iterator[WalRecord]:
        with open(self.path, "rb", buffering=1 << 20) as f:
            size = os.fstat(f.fileno()).st_size
            header = f.read(_SEG_HEADER.size)
            if len(header) < _SEG_HEADER.size or _SEG_HEADER.unpack(header) != (
                SEGMENT_MAGIC,
                self.first_lsn,
            ):
                self.end = 0
                self.problem = "bad segment header"
                return
            while self.limit is None or self.end < self.limit:
                head = f.read(_REC_HEADER.size)
                if not head:
                    return
                if len(head) < _REC_HEADER.size:
                    self.problem = "truncated record header"
                    return
                length, crc = _REC_HEADER.unpack(head)
                if length < _MIN_BODY or length > _MAX_BODY:
                    self.problem = f"impossible record length {length}"
                    return
                if self.end + _REC_HEADER.size + length > size:  # never read (and allocate) past the end
                    self.problem = "truncated record"
                    return
                body = f.read(length)
                if len(body) < length:
                    self.problem = "truncated record"
                    return
                if zlib.crc32(body) != crc:
                    self.problem = "CRC mismatch"
                    return
                (key_len,) = _KEY_LEN.unpack_from(body)
                (lsn,) = _LSN.unpack_from(body, length - _LSN.size)
                if _MIN_BODY + key_len > length:
                    self.problem = "key longer than record"
                    return
                if lsn != self.last_lsn + 1:
                    self.problem = f"lsn {lsn} where {self.last_lsn + 1} was expected"
                    return
                try:
                    key = body[2 : 2 + key_len].decode()
                except UnicodeDecodeError:
                    self.problem = "key is not UTF-8"
                    return
                self.end += _REC_HEADER.size + length
                self.last_lsn = lsn
                yield WalRecord(lsn, key, body[2 + key_len : length - _LSN.size])


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


_datasync = getattr(os, "fdatasync", os.fsync)


class WriteAheadLog:
    """Durable, ordered records, appended with group commit. Thread-safe; one instance per directory."""

    def __init__(
        self, directory: Path | str, *, segment_bytes: int = 64 << 20, group_commit_window: float = 0.002
    ):
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        self.segment_bytes = segment_bytes
        self.group_commit_window = group_commit_window
        self.stats = WalStats()
        self._lock_fd = os.open(self.directory / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(self._lock_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(self._lock_fd)
            raise WalError(f"the write-ahead log {self.directory} is in use by another process") from None
        try:
            self._open()
        except BaseException:
            os.close(self._lock_fd)
            raise
        self._cond = threading.Condition()  # guards the queue (_group, _next_lsn, _closing, _failed)
        self._seg_lock = threading.Lock()  # guards _segments and _size
        self._ckpt_lock = threading.Lock()
        self._group = _Group()
        self._last_group_size = 0
        self._closing = False
        self._closed = False
        self._failed: WalError | None = None
        self._listener: Listener | None = None
        self._writer = threading.Thread(target=self._run, name="tody-wal-writer", daemon=True)
        self._writer.start()

    # -- opening --------------------------------------------------------------------------------

    def _open(self) -> None:
        for tmp in self.directory.glob("*.tmp"):
            tmp.unlink()
        self._checkpoint_lsn, self.wal_id = self._load_checkpoint()
        ckpt = self._checkpoint_lsn
        segments = sorted(
            (int(p.stem), p)
            for p in self.directory.glob("*" + SEGMENT_SUFFIX)
            if p.stem.isdigit() and len(p.stem) == 20
        )
        # A crash between writing the checkpoint and deleting segments leaves covered segments behind.
        while len(segments) > 1 and segments[1][0] - 1 <= ckpt:
            segments.pop(0)[1].unlink()
        if segments and segments[0][0] > ckpt + 1:
            raise WalCorruptError(
                f"write-ahead log {self.directory}: records {ckpt + 1}..{segments[0][0] - 1} are missing "
                f"(checkpoint {ckpt}, first segment starts at {segments[0][0]})"
            )
        self._segments: list[tuple[int, Path]] = segments
        self._fd = -1
        next_lsn = ckpt + 1
        if segments:
            first, path = segments[-1]
            reader = _Reader(path, first)
            for _ in reader.records():
                pass
            size = path.stat().st_size
            if reader.end == 0:  # header torn while the segment was being created
                if size > _SEG_HEADER.size and path.read_bytes().strip(b"\0"):
                    raise WalCorruptError(f"{path}: not a write-ahead log segment ({reader.problem})")
                path.unlink()
                segments.pop()
                next_lsn = max(next_lsn, first)
            else:
                if size > reader.end:
                    log.warning(
                        "write-ahead log %s: cutting %d bytes at offset %d after lsn %d (%s); "
                        "they were never acknowledged",
                        path,
                        size - reader.end,
                        reader.end,
                        reader.last_lsn,
                        reader.problem or "trailing bytes",
                    )
                    with open(path, "r+b") as f:
                        f.truncate(reader.end)
                        os.fsync(f.fileno())
                next_lsn = max(next_lsn, reader.last_lsn + 1)
                if reader.last_lsn + 1 == next_lsn:
                    self._fd = os.open(path, os.O_WRONLY | os.O_APPEND)
                    self._size = reader.end
        self._next_lsn = next_lsn
        self._durable_lsn = next_lsn - 1
        if self._fd < 0:
            self._new_segment(next_lsn)

    def _load_checkpoint(self) -> tuple[int, str]:
        path = self.directory / CHECKPOINT_FILE
        try:
            doc = json.loads(path.read_bytes())
            return int(doc["checkpoint_lsn"]), str(doc["wal_id"])
        except FileNotFoundError:
            if any(self.directory.glob("*" + SEGMENT_SUFFIX)):
                log.warning("write-ahead log %s has segments but no checkpoint file", self.directory)
            wal_id = uuid.uuid4().hex
            self.wal_id = wal_id
            self._persist_checkpoint(0)
            return 0, wal_id
        except (ValueError, KeyError, TypeError) as exc:
            raise WalCorruptError(f"{path} is unreadable ({exc}); restore it or move the directory") from None

    def _persist_checkpoint(self, lsn: int) -> None:
        doc = {"format": 1, "wal_id": self.wal_id, "checkpoint_lsn": lsn}
        tmp = self.directory / (CHECKPOINT_FILE + ".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        try:
            _write_all(fd, json.dumps(doc).encode() + b"\n")
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, self.directory / CHECKPOINT_FILE)
        _fsync_dir(self.directory)
        self.stats.fsyncs += 2

    def _new_segment(self, first_lsn: int) -> None:
        """Create and sync a segment starting at `first_lsn`, and make it the active one."""
        path = self.directory / f"{first_lsn:020d}{SEGMENT_SUFFIX}"
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_APPEND, 0o644)
        try:
            _write_all(fd, _SEG_HEADER.pack(SEGMENT_MAGIC, first_lsn))
            os.fsync(fd)
            _fsync_dir(self.directory)
        except BaseException:
            os.close(fd)
            raise
        self.stats.fsyncs += 2
        self.stats.segments_created += 1
        old = self._fd
        self._fd = fd
        self._size = _SEG_HEADER.size
        self._segments.append((first_lsn, path))
        if old >= 0:
            os.close(old)

    # -- appending ------------------------------------------------------------------------------

    def _enqueue(
        self, key: str, payload: bytes, callback: Callable[[int, BaseException | None], None] | None = None
    ) -> tuple[_Group, int]:
        key_bytes = key.encode()
        if len(key_bytes) > MAX_KEY_BYTES:
            raise ValueError(f"a write-ahead log key is at most {MAX_KEY_BYTES} bytes")
        if not isinstance(payload, bytes):
            payload = bytes(payload)
        if len(payload) > MAX_PAYLOAD_BYTES:
            raise ValueError(f"a write-ahead log record is at most {MAX_PAYLOAD_BYTES} bytes")
        prefix = _KEY_LEN.pack(len(key_bytes)) + key_bytes
        partial = zlib.crc32(payload, zlib.crc32(prefix))  # the writer adds the lsn
        with self._cond:
            if self._closing:
                raise WalError("the write-ahead log is closed")
            if self._failed is not None:
                raise self._failed
            group = self._group
            index = len(group.entries)
            group.entries.append((key, prefix, payload, partial))
            group.nbytes += len(payload) + len(prefix) + 16
            if callback is not None:
                group.callbacks.append((index, callback))
            if index == 0:
                group.opened = time.monotonic()
                self._cond.notify()
            elif index + 1 == self._last_group_size or group.nbytes >= _GROUP_BYTES:
                self._cond.notify()
        return group, index

    def append(self, key: str, payload: bytes) -> int:
        """Write one record; return its lsn once it is on disk (written and fsync'd)."""
        group, index = self._enqueue(key, payload)
        group.done.wait()
        if group.error is not None:
            raise group.error
        return group.first_lsn + index

    async def append_async(self, key: str, payload: bytes) -> int:
        """`append` for asyncio callers: the event loop keeps running while the record is synced."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[int] = loop.create_future()

        def settle(lsn: int, error: BaseException | None) -> None:
            if future.done():
                return
            if error is not None:
                future.set_exception(error)
            else:
                future.set_result(lsn)

        def done(lsn: int, error: BaseException | None) -> None:
            loop.call_soon_threadsafe(settle, lsn, error)

        self._enqueue(key, payload, done)
        return await future

    def append_nowait(self, key: str, payload: bytes) -> None:
        """Queue a record for the next group commit without waiting for it (bookkeeping records)."""
        self._enqueue(key, payload)

    def set_listener(self, listener: Listener | None) -> int:
        """Call `listener(records)` from the writer thread with each group just made durable, in lsn
        order, before its appenders are woken. Returns the last durable lsn at the moment it was set."""
        with self._cond:
            self._listener = listener
            return self._durable_lsn

    # -- the writer thread ----------------------------------------------------------------------

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._group.entries and not self._closing:
                    self._cond.wait()
                group = self._group
                if not group.entries:
                    return
                if self.group_commit_window > 0:
                    # Wait for late-comers, but not for appenders that do not exist: stop once the group is
                    # as large as the previous one (with N threads appending, every one of them is back).
                    deadline = group.opened + self.group_commit_window
                    while (
                        len(group.entries) < self._last_group_size
                        and group.nbytes < _GROUP_BYTES
                        and not self._closing
                    ):
                        remaining = deadline - time.monotonic()
                        if remaining <= 0:
                            break
                        self._cond.wait(remaining)
                self._group = _Group()
                self._last_group_size = len(group.entries)
                first = self._next_lsn
                self._next_lsn += len(group.entries)
                listener = self._listener
                failed = self._failed
            if failed is None:
                try:
                    failed = self._commit(group, first, listener)
                except Exception as exc:  # never leave appenders waiting on a dead writer
                    log.exception("write-ahead log writer failed")
                    failed = WalError(f"write-ahead log writer failed: {exc}")
                    with self._cond:
                        self._failed = failed
            self._settle(group, first, failed)

    def _commit(self, group: _Group, first: int, listener: Listener | None) -> WalError | None:
        parts: list[bytes] = []
        for i, (_, prefix, payload, partial) in enumerate(group.entries):
            lsn = _LSN.pack(first + i)
            parts += (
                _REC_HEADER.pack(len(prefix) + len(payload) + 8, zlib.crc32(lsn, partial)),
                prefix,
                payload,
                lsn,
            )
        data = b"".join(parts)
        try:
            _write_all(self._fd, data)
            _datasync(self._fd)
        except OSError as exc:
            # After a failed write or fsync the file's state is unknown: stop taking records. A restart
            # cuts whatever was half written.
            error = WalError(f"write-ahead log I/O failed, no more events are accepted: {exc}")
            log.error("%s", error)
            with self._cond:
                self._failed = error
            return error
        last = first + len(group.entries) - 1
        stats = self.stats
        stats.fsyncs += 1
        stats.groups += 1
        stats.appends += len(group.entries)
        stats.bytes_written += len(data)
        with self._seg_lock:
            self._size += len(data)
        self._durable_lsn = last
        if listener is not None:
            records = [WalRecord(first + i, e[0], e[2]) for i, e in enumerate(group.entries)]
            try:
                listener(records)
            except Exception:
                log.exception("write-ahead log listener failed")
        if self._size >= self.segment_bytes:
            try:
                with self._seg_lock:
                    self._new_segment(last + 1)
            except OSError as exc:
                error = WalError(f"write-ahead log could not start a new segment: {exc}")
                log.error("%s", error)
                with self._cond:
                    self._failed = error
        return None

    @staticmethod
    def _settle(group: _Group, first: int, error: BaseException | None) -> None:
        group.first_lsn = first
        group.error = error
        group.done.set()
        for index, callback in group.callbacks:
            try:
                callback(first + index, error)
            except Exception:
                log.exception("write-ahead log callback failed")

    # -- reading and checkpoints ----------------------------------------------------------------

    @property
    def checkpoint_lsn(self) -> int:
        return self._checkpoint_lsn

    @property
    def last_lsn(self) -> int:
        """The highest durable lsn."""
        return self._durable_lsn

    def segments(self) -> list[Path]:
        with self._seg_lock:
            return [path for _, path in self._segments]

    def replay(self) -> Iterator[WalRecord]:
        """Every durable record above the checkpoint, in lsn order (meant for start-up)."""
        ckpt = self._checkpoint_lsn
        with self._seg_lock:
            segments = list(self._segments)
            active_size = self._size
        expected = None
        for i, (first, path) in enumerate(segments):
            last_possible = segments[i + 1][0] - 1 if i + 1 < len(segments) else None
            if last_possible is not None and last_possible <= ckpt:
                continue
            if expected is not None and first != expected:
                raise WalCorruptError(f"{path}: starts at lsn {first}, {expected} was expected")
            reader = _Reader(path, first, active_size if i == len(segments) - 1 else None)
            try:
                for record in reader.records():
                    if record.lsn > ckpt:
                        yield record
            except FileNotFoundError:
                if self._checkpoint_lsn >= (last_possible or self._durable_lsn):
                    continue  # checkpointed and deleted while we were reading
                raise
            if reader.problem is not None:
                raise WalCorruptError(
                    f"{path}: {reader.problem} at offset {reader.end} after lsn {reader.last_lsn}"
                )
            if last_possible is not None and reader.last_lsn != last_possible:
                raise WalCorruptError(
                    f"{path}: ends at lsn {reader.last_lsn}, the next segment starts at {last_possible + 1}"
                )
            expected = reader.last_lsn + 1

    def checkpoint(self, lsn: int) -> None:
        """Records <= lsn are safely elsewhere: persist that, and delete the segments they fill."""
        with self._ckpt_lock:
            if lsn <= self._checkpoint_lsn:
                return
            if lsn > self._durable_lsn:
                raise ValueError(f"cannot checkpoint lsn {lsn}: the last durable lsn is {self._durable_lsn}")
            self._persist_checkpoint(lsn)
            self._checkpoint_lsn = lsn
            doomed: list[Path] = []
            with self._seg_lock:
                while len(self._segments) > 1 and self._segments[1][0] - 1 <= lsn:
                    doomed.append(self._segments.pop(0)[1])
            for path in doomed:
                with contextlib.suppress(FileNotFoundError):
                    path.unlink()
                self.stats.segments_deleted += 1

    # -- closing --------------------------------------------------------------------------------

    def close(self) -> None:
        """Write what is queued, stop the writer, release the directory. Idempotent."""
        with self._cond:
            if self._closed:
                return
            self._closed = True
            self._closing = True
            self._cond.notify_all()
        self._writer.join()
        with self._seg_lock:
            if self._fd >= 0:
                os.close(self._fd)
                self._fd = -1
        os.close(self._lock_fd)

    def __enter__(self) -> WriteAheadLog:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
