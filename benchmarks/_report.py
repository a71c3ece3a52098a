"""Tables, verdicts and the small statistics the sections share."""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from typing import NamedTuple


class Check(NamedTuple):
    """One target: what it is, whether it was met."""

    section: str
    target: str
    passed: bool
    detail: str


#: Every target checked in this run, in order; run.py prints the summary.
CHECKS: list[Check] = []


def check(section: str, target: str, passed: bool, detail: str = "") -> str:
    """Record a target's verdict and return ``PASS`` or ``FAIL``."""
    CHECKS.append(Check(section, target, passed, detail))
    return "PASS" if passed else "FAIL"


def percentile(values: Sequence[float], fraction: float) -> float:
    """The nearest-rank percentile (``fraction`` 0.5 is the median, 0.99 p99)."""
    ordered = sorted(values)
    rank = max(1, math.ceil(fraction * len(ordered)))
    return ordered[rank - 1]


def median(values: Sequence[float]) -> float:
    return statistics.median(values)


def table(
    title: str,
    header: Sequence[str],
    rows: Sequence[Sequence[object]],
    left: int = 1,
) -> None:
    """Print a plain-text table: the first ``left`` columns left-aligned, the
    rest right-aligned.
    """
    cells = [[str(cell) for cell in row] for row in [header, *rows]]
    widths = [max(len(row[i]) for row in cells) for i in range(len(header))]

    def line(row: list[str]) -> str:
        aligned = [
            cell.ljust(width) if i < left else cell.rjust(width)
            for i, (cell, width) in enumerate(zip(row, widths))
        ]
        return "  ".join(aligned).rstrip()

    rule = "  ".join("-" * width for width in widths)
    print(f"\n{title}\n{rule}")
    print(line(cells[0]))
    print(rule)
    for row in cells[1:]:
        print(line(row))
    print(rule, flush=True)
