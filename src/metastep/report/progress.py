"""Progress of a run, on a terminal and in a log.

On a terminal (the stream is a TTY) progress is a tqdm bar redrawn in place. Anywhere else (CI, a
run redirected with ``> log 2>&1``) redrawing would fill the log with carriage returns and escape
codes, so progress is written as plain lines instead, at most one every :data:`LOG_INTERVAL`
seconds, plus one when the work is done.
"""

from __future__ import annotations

import contextlib
import sys
import time
from collections.abc import Callable, Iterator
from typing import Any, TextIO

from tqdm.auto import tqdm

from metastep.engine import progress_listener

# Seconds between two progress lines in a log: a line every half minute keeps a long run's log
# short and still shows that it moves.
LOG_INTERVAL = 30.0


def is_terminal(stream: TextIO) -> bool:
    isatty = getattr(stream, "isatty", None)
    try:
        return bool(isatty and isatty())
    except ValueError:  # a closed stream
        return False


def duration(seconds: float) -> str:
    """``seconds`` as ``1h02m``, ``3m05s`` or ``42s``."""
    seconds = max(0, round(seconds))
    hours, rest = divmod(seconds, 3600)
    minutes, seconds = divmod(rest, 60)
    if hours:
        return f"{hours}h{minutes:02d}m"
    return f"{minutes}m{seconds:02d}s" if minutes else f"{seconds}s"


def amount(value: float) -> str:
    """A count in engineering units: ``950``, ``12.3k``, ``4.5M``, ``1.2G``."""
    for factor, suffix in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if value >= factor:
            return f"{value / factor:.3g}{suffix}"
    return f"{value:.3g}"


class LogProgress:
    """The subset of a tqdm bar's interface that the runner uses, written as plain lines.

    A line says what fraction of the work is done, the current stage (``set_postfix_str``),
    the time elapsed and, once some work is done, an estimate of the time left.
    """

    def __init__(self, total: float, initial: float = 0.0, desc: str = "", unit: str = "",
                 stream: TextIO | None = None, interval: float | None = None,
                 clock: Callable[[], float] = time.monotonic):
        self.total, self.n, self.desc, self.unit = float(total), float(initial), desc, unit
        self.stream = sys.stderr if stream is None else stream
        self.interval = LOG_INTERVAL if interval is None else interval
        self.clock = clock
        self.start = self.last_line = clock()
        self.initial = self.n
        self.postfix = ""
        self.write()  # a log shows when each piece of work starts

    def line(self) -> str:
        percent = 100 * self.n / self.total if self.total else 100.0
        parts = [f"{self.desc}: {percent:3.0f}% of {amount(self.total)} {self.unit}".rstrip()]
        if self.postfix:
            parts.append(self.postfix)
        elapsed = self.clock() - self.start
        parts.append(f"{duration(elapsed)} elapsed")
        done = self.n - self.initial
        if 0 < done and self.n < self.total:
            parts.append(f"about {duration(elapsed * (self.total - self.n) / done)} left")
        return ", ".join(parts)

    def write(self) -> None:
        print(self.line(), file=self.stream, flush=True)
        self.last_line = self.clock()

    def update(self, n: float = 1) -> None:
        self.n += n
        if self.clock() - self.last_line >= self.interval:
            self.write()

    def set_postfix_str(self, text: str) -> None:
        self.postfix = text

    def close(self) -> None:
        self.write()

    def __enter__(self) -> LogProgress:
        return self

    def __exit__(self, *exc_info: Any) -> None:
        if exc_info[0] is None:
            self.close()


def progress_bar(total: float, *, initial: float = 0.0, desc: str = "", unit: str = "",
                 enabled: bool = True, stream: TextIO | None = None):
    """A tqdm bar on a terminal, :class:`LogProgress` elsewhere, nothing if not ``enabled``."""
    stream = sys.stderr if stream is None else stream
    if enabled and not is_terminal(stream):
        return LogProgress(total, initial, desc, unit, stream)
    return tqdm(total=total, initial=initial, desc=desc, unit=unit, unit_scale=True,
                disable=not enabled, dynamic_ncols=True, file=stream)


@contextlib.contextmanager
def shard_progress(bar, work: float, engine_lane_steps: float | None = None) -> Iterator[None]:
    """Advance ``bar`` while a shard computes, by the lane-steps of each compiled chunk that the
    engine reports (scaled by ``work / engine_lane_steps``: the shard's declared work per engine
    lane-step), then to exactly the shard's ``work`` when it is done.

    The declared lane-steps are an estimate: if the engine reports more, the bar waits at the
    shard's end until it is done; if fewer, it jumps at the end.
    """
    scale = 1.0 if engine_lane_steps is None else work / engine_lane_steps
    advanced = 0.0

    def advance(lane_steps: int) -> None:
        nonlocal advanced
        step = min(scale * lane_steps, work - advanced)
        if step > 0:
            bar.update(step)
            advanced += step

    with progress_listener(advance):
        yield
    if advanced < work:
        bar.update(work - advanced)
