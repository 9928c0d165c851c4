"""Results of a rollout: per-host status from the engines' events, progress and the summary.

Both engines write the same JSON-line events (``@dcops {...}``): ``task`` (host, part, task,
status ok|changed|failed|unreachable, changed items, diffs, message), ``host_done`` and a
few others. A host ends as ``unreachable`` (no SSH), ``failed`` (a task failed), ``changed``
or ``unchanged``.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from typing import Callable

from rich.console import Console
from rich.table import Table

PREFIX = "@dcops "

ORDER = {"unreachable": 0, "failed": 1, "changed": 2, "unchanged": 3}


def parse(line: str) -> dict | None:
    if not line.startswith(PREFIX):
        return None
    try:
        return json.loads(line[len(PREFIX):])
    except json.JSONDecodeError:
        return None


@dataclass
class HostResult:
    host: str
    unreachable: str = ""
    failed: str = ""
    changes: list[str] = field(default_factory=list)
    diffs: list[str] = field(default_factory=list)
    done: bool = False
    skipped: str = ""  # never deployed (reason)

    @property
    def status(self) -> str:
        if self.unreachable:
            return "unreachable"
        if self.failed or self.skipped:
            return "failed"
        return "changed" if self.changes else "unchanged"

    @property
    def detail(self) -> str:
        return self.unreachable or self.failed or self.skipped or ""


class Results:
    """Collects events for the hosts of the run and prints progress as hosts finish."""

    def __init__(self, hosts: list[str], console: Console, check: bool, show_diffs: bool = True):
        self.hosts = {h: HostResult(h) for h in hosts}
        self.console = console
        self.check = check
        self.show_diffs = show_diffs
        self.t0 = time.monotonic()
        self.finished = 0
        self.width = max((len(h) for h in hosts), default=8)

    # ----------------------------------------------------------------- events
    def feed(self, ev: dict) -> None:
        kind = ev.get("ev")
        h = self.hosts.get(ev.get("host", ""))
        if kind == "task" and h is not None:
            st = ev.get("status")
            if st == "unreachable":
                h.unreachable = h.unreachable or _first_line(ev.get("msg") or "unreachable")
                self.host_finished(h.host)
            elif st == "failed":
                where = f"{ev.get('role') + ': ' if ev.get('role') else ''}{ev.get('task', '')}"
                h.failed = h.failed or f"{where}: {(ev.get('msg') or '').strip()}".strip(": ")
                if ev.get("phase") != "deploy_item":
                    self.host_finished(h.host)
            elif st == "changed" and not (self.check and ev.get("handler")):
                # in check mode a handler "would run" only because a file would change: counted there
                role = ev.get("role") or ""
                items = ev.get("items") or [ev.get("task", "")]
                for it in items:
                    label = f"{role}: {it}" if role else str(it)
                    if label not in h.changes:
                        h.changes.append(label)
                h.diffs.extend(d for d in ev.get("diffs") or [] if d)
            if ev.get("task") == "Endpoint converged" and st in ("ok", "changed"):
                if h.changes and h.changes[-1].endswith("Endpoint converged"):
                    h.changes.pop()
                self.host_finished(h.host)
        elif kind == "host_done" and h is not None:
            self.host_finished(h.host)

    def skip(self, host: str, reason: str) -> None:
        h = self.hosts.get(host)
        if h and not h.unreachable and not h.failed:
            h.skipped = reason
            self.host_finished(host)

    def host_finished(self, host: str) -> None:
        h = self.hosts[host]
        if h.done:
            return
        h.done = True
        self.finished += 1
        n = len(self.hosts)
        st = h.status
        word = {"changed": "would change" if self.check else "changed"}.get(st, st)
        extra = ""
        if st == "changed":
            extra = _by_part(h.changes)
        elif h.detail:
            extra = _first_line(h.detail)
        self.console.print(
            f"[{self.finished:>{len(str(n))}}/{n}] {time.monotonic() - self.t0:6.1f}s  "
            f"{h.host:<{self.width}}  {word:<12} {extra}",
            markup=False,
        )
        if self.check and self.show_diffs and h.diffs:
            for d in h.diffs:
                for line in d.rstrip("\n").splitlines():
                    self.console.print(f"      {line}", markup=False)

    def finish_all(self, reason: str) -> None:
        """Hosts that got no final event (the engine stopped early)."""
        for h in self.hosts.values():
            if not h.done:
                if not (h.unreachable or h.failed):
                    h.failed = reason
                self.host_finished(h.host)

    # ---------------------------------------------------------------- summary
    def counts(self) -> dict[str, int]:
        c = {k: 0 for k in ORDER}
        for h in self.hosts.values():
            c[h.status] += 1
        return c

    @property
    def ok(self) -> bool:
        c = self.counts()
        return c["failed"] == 0 and c["unreachable"] == 0

    def table(self, title: str) -> Table:
        t = Table(title=title, title_justify="left")
        t.add_column("host")
        t.add_column("result")
        t.add_column("changes", justify="right")
        t.add_column("detail", overflow="fold")
        for h in sorted(self.hosts.values(), key=lambda h: (ORDER[h.status], h.host)):
            st = h.status
            word = "would change" if (st == "changed" and self.check) else st
            detail = _first_line(h.detail, 160) if h.detail else _by_part(h.changes)
            t.add_row(h.host, word, str(len(h.changes)), detail)
        return t

    def summary_line(self) -> str:
        c = self.counts()
        ch = "would change" if self.check else "changed"
        return (
            f"{ch} {c['changed']}, unchanged {c['unchanged']}, failed {c['failed']}, "
            f"unreachable {c['unreachable']} ({len(self.hosts)} hosts, {time.monotonic() - self.t0:.1f}s)"
        )

    def to_json(self) -> dict:
        return {
            "check": self.check,
            "counts": self.counts(),
            "hosts": {
                h.host: {"status": h.status, "changes": h.changes, "detail": h.detail} for h in self.hosts.values()
            },
        }


def _by_part(changes: list[str]) -> str:
    """'firewall 2, wireguard 3' from 'part: item' labels."""
    counts: dict[str, int] = {}
    for c in changes:
        part = c.split(":", 1)[0] if ":" in c else c
        counts[part] = counts.get(part, 0) + 1
    return ", ".join(f"{p} {n}" for p, n in counts.items())


def _first_line(s: str, width: int = 200) -> str:
    s = (s or "").strip()
    line = next((ln for ln in s.splitlines() if ln.strip()), "")
    return line[:width]


EventSink = Callable[[dict], None]
