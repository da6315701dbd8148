"""Progress lines for long work: rows done of total, rows/s, estimated time left."""

import logging
import time


class Progress:
    """Call `advance(n)` as rows are done; logs at most every `every` seconds, and at the end."""

    def __init__(self, log: logging.Logger, what: str, total: int | None, every: float = 5.0):
        self.log, self.what, self.total, self.every = log, what, total, every
        self.done = 0
        self.started = self.last = time.perf_counter()

    def advance(self, rows: int) -> None:
        self.done += rows
        now = time.perf_counter()
        if now - self.last >= self.every:
            self.last = now
            self._report(now)

    def finish(self) -> float:
        """Log the final line and return the elapsed seconds."""
        now = time.perf_counter()
        elapsed = now - self.started
        rate = self.done / elapsed if elapsed > 0 else 0.0
        self.log.info("%s: %d rows in %.1f s (%.0f rows/s)", self.what, self.done, elapsed, rate)
        return elapsed

    def _report(self, now: float) -> None:
        elapsed = now - self.started
        rate = self.done / elapsed if elapsed > 0 else 0.0
        if self.total:
            left = (self.total - self.done) / rate if rate else float("nan")
            self.log.info(
                "%s: %d/%d rows (%.0f%%), %.0f rows/s, about %.0f s left",
                self.what,
                self.done,
                self.total,
                100 * self.done / self.total,
                rate,
                left,
            )
        else:
            self.log.info("%s: %d rows, %.0f rows/s", self.what, self.done, rate)
