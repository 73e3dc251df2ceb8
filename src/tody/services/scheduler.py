"""The copy scheduler: one background thread that fires due copy pipes as jobs.

Each scheduled copy pipe has a row in the catalog (`copy_schedules`): its cron, whether it is paused,
when counting started (`since`: the schedule was set or resumed) and the scheduled time of its last
firing. A copy is due when the cron's first time after the later of those two has come. State lives
in the catalog, so a restart keeps the rhythm; firings missed while the server was down collapse into
one run at start. A firing while the previous run of the same pipe is still waiting or working is
skipped (counted as fired, not deferred), so a copy never runs twice at once.

The clock is the copy service's (`CopyService.clock`), and `tick(now)` can be called directly: tests
drive schedules without waiting for the cron.
"""

from __future__ import annotations

import logging
import threading
from datetime import datetime

from croniter import CroniterError

from tody.catalog.store import JobRecord
from tody.services.copies import CopyService, last_due, next_run

log = logging.getLogger("tody.scheduler")


class CopyScheduler:
    def __init__(self, copies: CopyService, *, interval: float = 1.0):
        self.copies = copies
        self.catalog = copies.catalog
        self.interval = interval  # seconds between ticks; cron's resolution is a minute
        self._lock = threading.Lock()  # one tick at a time (thread and direct callers)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._loop, name="tody-scheduler", daemon=True)
            self._thread.start()

    def _loop(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                self.tick()
            except Exception:  # the scheduler must outlive any one bad schedule or catalog hiccup
                log.exception("copy scheduler tick failed")

    def tick(self, now: datetime | None = None) -> list[JobRecord]:
        """Fire every copy due at `now` (default: the clock). Returns the jobs started."""
        fired: list[JobRecord] = []
        with self._lock:
            if self._stop.is_set():
                return fired
            now = now or self.copies.clock()
            for rec in self.catalog.copy_schedules():
                if rec.status != "running":
                    continue
                try:
                    due = next_run(rec.cron, max(rec.since, rec.last_run_at or rec.since))
                    latest = last_due(rec.cron, now)
                except (CroniterError, ValueError) as exc:
                    log.warning("copy schedule of pipe %s is not usable (%s): %s", rec.pipe_id, rec.cron, exc)
                    continue
                if due > now:
                    continue
                job = self.copies.fire(rec)
                self.catalog.update_copy_schedule(
                    rec.pipe_id, last_run_at=latest, last_job_id=job.id if job else rec.last_job_id
                )
                if job is not None:
                    fired.append(job)
        return fired

    def close(self) -> None:
        """Stop ticking (before the job pool shuts down, so nothing is submitted to it after)."""
        with self._lock:
            self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
            self._thread = None
