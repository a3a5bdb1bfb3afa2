"""A dependency-free progress bar with time remaining.

On a terminal it redraws one line in place; elsewhere (a file, a pipe, a notebook) it prints a
plain line at most every ``every_s`` seconds (10 s by default), so a long run redirected to a
log still shows that it is alive and how far it got.
"""
import sys
import time

__all__ = ["Progress"]


class Progress:
    """Progress over ``total`` units of work, written to ``stream`` (stderr by default).

    Parameters
    ----------
    total : int
        Units of work.
    desc : str
        Label printed before the bar.
    quiet : bool
        Print nothing.
    stream : file, optional
        Where to write (default ``sys.stderr``).
    every_s : float
        Seconds between plain lines when ``stream`` is not a terminal.
    """

    def __init__(self, total, desc="", quiet=False, stream=None, every_s=10.0):
        self.total = max(int(total), 1)
        self.desc = desc
        self.stream = stream or sys.stderr
        self.tty = bool(getattr(self.stream, "isatty", None) and self.stream.isatty())
        self.enabled = not quiet
        self.every_s = every_s
        self.done = 0
        self.start = time.perf_counter()
        self._last = 0.0 if self.tty else self.start
        self._lines = 0

    def update(self, n=1):
        self.done = min(self.done + n, self.total)
        if not self.enabled:
            return
        now = time.perf_counter()
        if self.tty:
            if now - self._last > 0.2 or self.done == self.total:
                self._last = now
                self._draw(now)
        elif now - self._last >= self.every_s:
            self._last = now
            self._line(now)

    def _eta(self, now):
        frac = self.done / self.total
        elapsed = now - self.start
        return frac, elapsed, (elapsed * (1 - frac) / frac if frac > 0 else float("nan"))

    def _draw(self, now):
        frac, _, eta = self._eta(now)
        width = 30
        bar = "#" * int(width * frac) + "-" * (width - int(width * frac))
        eta_s = f"{eta:6.1f}s left" if eta == eta else "   ?  s left"
        self.stream.write(f"\r{self.desc} [{bar}] {100 * frac:5.1f}% {eta_s}")
        self.stream.flush()

    def _line(self, now):
        frac, elapsed, eta = self._eta(now)
        left = f", about {eta:.0f} s left" if eta == eta else ""
        self.stream.write(f"{self.desc}: {100 * frac:5.1f}% ({self.done}/{self.total}) after "
                          f"{elapsed:.0f} s{left}\n")
        self.stream.flush()
        self._lines += 1

    def close(self):
        if not self.enabled:
            return
        if self.tty:
            self._draw(time.perf_counter())
            self.stream.write("\n")
            self.stream.flush()
        elif self._lines:  # the log showed progress: show where it ended too
            self._line(time.perf_counter())

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
