"""Whole-process timing: alternate commands round-robin after a warm-up; medians, ratios, peak RSS."""

from __future__ import annotations

import os
import statistics
import subprocess
import tempfile
import time
from dataclasses import dataclass, field


@dataclass
class Measured:
    label: str
    argv: list[str]
    seconds: list[float] = field(default_factory=list)
    peak_rss: int = 0  # bytes, the largest of all runs

    @property
    def median(self) -> float:
        return statistics.median(self.seconds)


class BenchmarkError(RuntimeError):
    pass


def run_once(argv: list[str], stdin_path: str | None = None, env: dict | None = None) -> tuple[float, int]:
    """Seconds and peak resident memory (bytes) of one whole process."""
    with tempfile.TemporaryFile() as errors:
        stdin = open(stdin_path, "rb") if stdin_path else subprocess.DEVNULL
        try:
            start = time.perf_counter()
            process = subprocess.Popen(argv, stdin=stdin, stdout=subprocess.DEVNULL, stderr=errors, env=env)
            _, status, usage = os.wait4(process.pid, 0)
            elapsed = time.perf_counter() - start
        finally:
            if stdin_path:
                stdin.close()
        process.returncode = os.waitstatus_to_exitcode(status)
        if process.returncode != 0:
            errors.seek(0)
            tail = errors.read().decode(errors="replace")[-800:]
            raise BenchmarkError(f"{' '.join(argv)} exited {process.returncode}: {tail}")
    return elapsed, usage.ru_maxrss * 1024


def alternate(commands: list[Measured], rounds: int, warmup: int = 1, stdin_path: str | None = None, env=None) -> list[Measured]:
    """Run every command once per round, in turn (A, B, C, A, B, C, …) after ``warmup`` rounds."""
    for round_number in range(warmup + rounds):
        for command in commands:
            seconds, rss = run_once(command.argv, stdin_path, env)
            if round_number >= warmup:
                command.seconds.append(seconds)
                command.peak_rss = max(command.peak_rss, rss)
    return commands


def paired_ratio(a: Measured, b: Measured) -> float:
    """Median of the per-round ratios a/b (robust to drifts of the machine)."""
    return statistics.median(x / y for x, y in zip(a.seconds, b.seconds))
