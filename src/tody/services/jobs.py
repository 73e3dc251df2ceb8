"""Jobs: asynchronous operations (URL imports, deletes by condition, …) with status and progress.

A job runs on a small thread pool. Its function receives a `JobContext` to report progress and to
notice cancellation (cooperative: a running engine statement is not interrupted, the job stops at
its next checkpoint). After a restart no job is running, so any job left `waiting` or `working`
ends as `error` with a message saying so; none stays stuck.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from typing import Any

from tody.catalog.store import Catalog, JobRecord, utcnow
from tody.services.datasources import TIMESTAMP
from tody.services.errors import BadRequest, NotFound, ServiceError
from tody.services.tokens import Principal

log = logging.getLogger("tody.jobs")

RESTARTED = "The server restarted while this job was running; start it again"
FINISHED = ("done", "error", "cancelled")


class JobCancelled(Exception):
    pass


class JobContext:
    def __init__(self, service: JobService, job_id: str):
        self._service = service
        self.job_id = job_id

    @property
    def cancelled(self) -> bool:
        return self.job_id in self._service._cancel_requested

    def checkpoint(self, progress: float | None = None, **result: Any) -> None:
        """Record progress (0..1) and partial results; raises JobCancelled if a cancel was asked."""
        if self.cancelled:
            raise JobCancelled()
        values: dict[str, Any] = {}
        if progress is not None:
            values["progress"] = max(0.0, min(1.0, progress))
        if result:
            current = self._service.catalog.job_by_id(self.job_id)
            values["result"] = {**(current.result if current else {}), **result}
        if values:
            self._service.catalog.update_job(self.job_id, **values)


JobFunction = Callable[[JobContext], dict[str, Any]]


class JobService:
    def __init__(self, catalog: Catalog, *, workers: int = 2, query_settings: dict[str, Any] | None = None):
        self.catalog = catalog
        # Limits for the statements jobs run on the admin connection (copies, populates): user SQL in
        # them is checked by the gate, but its size is not bounded by the query pool's limits.
        self.query_settings = dict(query_settings or {})
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="tody-job")
        self._cancel_requested: set[str] = set()
        self._running: set[str] = set()
        self._lock = threading.Lock()
        # Called with the final record of every job that ends (tinybird.jobs_log); errors only logged.
        self.finish_hooks: list[Callable[[JobRecord], None]] = []

    def fail_unfinished(self) -> int:
        """At start, once the hooks are in place: jobs a stop interrupted end as errors, and are logged
        (tinybird.jobs_log) like every other job that ends."""
        failed = self.catalog.fail_unfinished_jobs(RESTARTED)
        if failed:
            log.warning("%d job(s) were running when the server stopped; marked as error", len(failed))
        for rec in failed:
            self._run_hooks(rec)
        return len(failed)

    def submit(
        self,
        principal: Principal,
        kind: str,
        fn: JobFunction,
        *,
        params: dict[str, Any] | None = None,
        datasource_id: str | None = None,
        pipe_id: str | None = None,
    ) -> JobRecord:
        now = utcnow()
        rec = JobRecord(
            id=str(uuid.uuid4()),
            workspace_id=principal.workspace.id,
            kind=kind,
            status="waiting",
            datasource_id=datasource_id,
            pipe_id=pipe_id,
            progress=0.0,
            params=params or {},
            result={},
            error=None,
            created_at=now,
            updated_at=now,
            started_at=None,
        )
        self.catalog.add_job(rec)
        self._pool.submit(self._run, rec.id, fn)
        return rec

    def _run(self, job_id: str, fn: JobFunction) -> None:
        if job_id in self._cancel_requested:
            self._finish(job_id, status="cancelled")
            return
        self.catalog.update_job(job_id, status="working", started_at=utcnow())
        with self._lock:
            self._running.add(job_id)
        try:
            result = fn(JobContext(self, job_id))
        except JobCancelled:
            self._finish(job_id, status="cancelled")
        except ServiceError as exc:
            self._finish(job_id, status="error", error=exc.message)
        except Exception as exc:
            log.exception("job %s failed", job_id)
            message = getattr(exc, "message", None) or str(exc) or exc.__class__.__name__
            self._finish(job_id, status="error", error=message)
        else:
            current = self.catalog.job_by_id(job_id)
            merged = {**(current.result if current else {}), **(result or {})}
            self._finish(job_id, status="done", progress=1.0, result=merged)

    def _finish(self, job_id: str, **values: Any) -> None:
        rec = self.catalog.update_job(job_id, **values)
        with self._lock:
            self._cancel_requested.discard(job_id)
            self._running.discard(job_id)
        self._run_hooks(rec)

    def _run_hooks(self, rec: JobRecord) -> None:
        for hook in self.finish_hooks:
            try:
                hook(rec)
            except Exception:
                log.exception("finish hook of job %s failed", rec.id)

    def get(self, principal: Principal, job_id: str) -> JobRecord:
        rec = self.catalog.job(principal.workspace.id, job_id)
        if rec is None:
            raise NotFound(f"Job '{job_id}' not found")
        return rec

    def recent(
        self, principal: Principal, *, kind: str | None = None, status: str | None = None
    ) -> list[JobRecord]:
        found = self.catalog.jobs(principal.workspace.id, since=utcnow() - timedelta(hours=48))
        return [
            j for j in found if (kind is None or j.kind == kind) and (status is None or j.status == status)
        ]

    def cancel(self, principal: Principal, job_id: str) -> JobRecord:
        rec = self.get(principal, job_id)
        if rec.status in FINISHED:
            raise BadRequest(f"Job '{job_id}' is {rec.status} and cannot be cancelled")
        with self._lock:
            self._cancel_requested.add(job_id)
        if rec.status == "waiting":
            return self.catalog.update_job(job_id, status="cancelled")
        return self.catalog.update_job(job_id, status="cancelling")

    def wait(self, principal: Principal, job_id: str, timeout: float = 60.0) -> JobRecord:
        deadline = time.monotonic() + timeout
        while True:
            rec = self.get(principal, job_id)
            if rec.status in FINISHED or time.monotonic() > deadline:
                return rec
            time.sleep(0.05)

    @staticmethod
    def describe(rec: JobRecord, host: str = "") -> dict[str, Any]:
        """The Job object of the API (`GET /v0/jobs/{id}`)."""
        out: dict[str, Any] = {
            "id": rec.id,
            "job_id": rec.id,
            "kind": rec.kind,
            "status": rec.status,
            "progress": rec.progress,
            "progress_percentage": round(rec.progress * 100, 1),
            "created_at": rec.created_at.strftime(TIMESTAMP),
            "updated_at": rec.updated_at.strftime(TIMESTAMP),
            "started_at": rec.started_at.strftime(TIMESTAMP) if rec.started_at else None,
            "job_url": f"{host.rstrip('/')}/v0/jobs/{rec.id}",
            "statistics": rec.result.get("statistics", {}),
            "block_log": rec.result.get("block_log", []),
            **{k: v for k, v in rec.params.items() if k not in ("token",)},
            **{k: v for k, v in rec.result.items() if k not in ("statistics", "block_log")},
        }
        if rec.error:
            out["error"] = rec.error
            out["errors"] = [rec.error]
        return out

    def close(self) -> None:
        """Stop: queued jobs never start, running ones stop at their next checkpoint."""
        with self._lock:
            self._cancel_requested.update(self._running)
        self._pool.shutdown(wait=True, cancel_futures=True)
