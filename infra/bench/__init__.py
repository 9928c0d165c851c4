"""``dcops bench``: how fast dcops does its job at province scale, against baselines measured
in the same run. One module per case (``wan``, ``checks``, ``provision``, ``sla``, ``memory``),
each with ``run(opts: BenchOptions) -> CaseResult``; :mod:`.core` holds the data and the markdown."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

from .core import CaseResult, Measure, Progress, Target  # noqa: F401


@dataclass
class BenchOptions:
    sites: list[int] = field(default_factory=lambda: [10, 50, 100, 200])
    repeat: int = 3                 # runs per measure (cases may use fewer for very long ones, and say so)
    name: str = "bench"             # lab name prefix; each case makes its own lab(s) from it and removes them
    progress: Progress = print
    keep: bool = False              # leave the case's lab running afterwards (for profiling)
    variants: list[str] = field(default_factory=lambda: ["pyinfra", "ansible-tuned", "ansible-default"])  # wan case
    ansible_first_max: int = 50     # wan case: Ansible's first apply is timed up to this many sites
    checkpoint: Callable[[CaseResult], None] | None = None  # save a long case's partial result
    reuse: bool = False             # province case: go on with the lab an earlier run left (--keep)
    skip: set[str] = field(default_factory=set)  # province case: steps not run this time (--skip)

    @property
    def max_sites(self) -> int:
        return max(self.sites)
