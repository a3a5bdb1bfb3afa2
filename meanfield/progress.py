"""A dependency-free progress bar with time remaining, drawn only on a terminal."""
import sys
import time

__all__ = ["Progress"]


class Progress:
    """Progress over ``total`` units of work, written to ``stream`` (stderr by default).

    Quiet when ``quiet`` is true or the stream is not a terminal, so logs and CI output stay
    clean. Redraws at most every 0.2 s.
    """

    def __init__(self, total, desc="", quiet=False, stream=None):
        self.total = max(int(total), 1)
        self.desc = desc
        self.stream = stream or sys.stderr
        self.enabled = not quiet and hasattr(self.stream, "isatty") and self.stream.isatty()
        self.done = 0
        self.start = time.perf_counter()
        self._last = 0.0

    def update(self, n=1):
        self.done = min(self.done + n, self.total)
        now = time.perf_counter()
        if self.enabled and (now - self._last > 0.2 or self.done == self.total):
            self._last = now
            self._draw(now)

    def _draw(self, now):
        frac = self.done / self.total
        elapsed = now - self.start
        eta = elapsed * (1 - frac) / frac if frac > 0 else float("nan")
        width = 30
        bar = "#" * int(width * frac) + "-" * (width - int(width * frac))
        eta_s = f"{eta:6.1f}s left" if eta == eta else "   ?  s left"
        self.stream.write(f"\r{self.desc} [{bar}] {100 * frac:5.1f}% {eta_s}")
        self.stream.flush()

    def close(self):
        if self.enabled:
            self._draw(time.perf_counter())
            self.stream.write("\n")
            self.stream.flush()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
