"""The one result schema every control produces.

A result says which control ran on which target, the verdict, why, and what
evidence was kept.  Statuses:

- ``pass``: the control's requirement holds on the target;
- ``fail``: it does not (the evidence says what was found);
- ``error``: the control could not decide (host unreachable, Prometheus down,
  a series missing...).  ``reason`` says why.  An error is never a pass;
- ``skipped``: the control does not apply here (wrong level, not selected);
  ``reason`` says why;
- ``not_assessed``: the control applies but the environment gives no way to see its
  evidence (for example encryption at rest on a managed cluster, for a read-only identity);
  ``reason`` says why, the evidence says what would settle it. Never a pass, not a failure;
- ``waived``: a ``fail`` or ``error`` that an approved, unexpired waiver covers
  (:mod:`infra.waivers`); ``waiver`` keeps the status it had, the justification, the
  approver and the expiry date.  Not a failure.  An expired waiver leaves the status as
  it was and is kept in ``waiver`` with ``expired: true``;
- ``insufficient_data``: an SLA whose monitored time covers less of its window than the
  province's threshold (``reason`` and the evidence say how long was observed). Never a pass,
  not a failure.

Results are written as JSON (``write_results``): a document with the run's
metadata, a summary and one entry per result.  Everything written passes through
the one redaction of dcops first (:func:`infra.redact.redact`, the report's too):
a secret in evidence or a reason never reaches the file.
"""

from __future__ import annotations

import datetime as _dt
import json
import os
from dataclasses import asdict, dataclass, field
from enum import Enum
from pathlib import Path
from typing import Any, Iterable

from infra.redact import SecretLeak, find_secrets, redact

SCHEMA_VERSION = 1


class Status(str, Enum):
    passed = "pass"
    failed = "fail"
    error = "error"
    skipped = "skipped"
    not_assessed = "not_assessed"
    waived = "waived"
    insufficient_data = "insufficient_data"


def now_iso() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")


@dataclass
class Result:
    control: str
    target: str
    status: Status
    evidence: dict[str, Any] = field(default_factory=dict)
    reason: str = ""
    time: str = field(default_factory=now_iso)
    duration_s: float = 0.0
    waiver: dict[str, Any] | None = None  # infra.waivers: set on waived results and on ones whose waiver expired

    def __post_init__(self) -> None:
        self.status = Status(self.status)
        if self.status in (Status.error, Status.skipped, Status.not_assessed, Status.insufficient_data) and not self.reason:
            raise ValueError(f"{self.control} on {self.target}: status {self.status.value} needs a reason")
        if self.status == Status.waived and not self.waiver:
            raise ValueError(f"{self.control} on {self.target}: status waived needs its waiver")

    # constructors that read well in control code
    @classmethod
    def ok(cls, control: str, target: str, evidence: dict | None = None, reason: str = "") -> "Result":
        return cls(control, target, Status.passed, evidence or {}, reason)

    @classmethod
    def fail(cls, control: str, target: str, evidence: dict | None = None, reason: str = "") -> "Result":
        return cls(control, target, Status.failed, evidence or {}, reason)

    @classmethod
    def err(cls, control: str, target: str, reason: str, evidence: dict | None = None) -> "Result":
        return cls(control, target, Status.error, evidence or {}, reason)

    @classmethod
    def skip(cls, control: str, target: str, reason: str) -> "Result":
        return cls(control, target, Status.skipped, {}, reason)

    @classmethod
    def not_assessed(cls, control: str, target: str, reason: str, evidence: dict | None = None) -> "Result":
        return cls(control, target, Status.not_assessed, evidence or {}, reason)

    @classmethod
    def insufficient(cls, control: str, target: str, reason: str, evidence: dict | None = None) -> "Result":
        return cls(control, target, Status.insufficient_data, evidence or {}, reason)

    @classmethod
    def verdict(cls, control: str, target: str, good: bool, evidence: dict, reason_fail: str = "", reason_pass: str = "") -> "Result":
        return cls(control, target, Status.passed if good else Status.failed, evidence, reason_pass if good else reason_fail)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["status"] = self.status.value
        if d["waiver"] is None:
            del d["waiver"]
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "Result":
        return cls(
            control=d["control"],
            target=d["target"],
            status=Status(d["status"]),
            evidence=d.get("evidence") or {},
            reason=d.get("reason", ""),
            time=d.get("time") or now_iso(),
            duration_s=float(d.get("duration_s", 0.0)),
            waiver=d.get("waiver"),
        )


def summarize(results: Iterable[Result]) -> dict[str, int]:
    counts = {s.value: 0 for s in Status}
    for r in results:
        counts[r.status.value] += 1
    counts["total"] = sum(counts[s.value] for s in Status)
    return counts


def any_failed(results: Iterable[Result]) -> bool:
    return any(r.status in (Status.failed, Status.error) for r in results)


def document(results: list[Result], meta: dict[str, Any] | None = None) -> dict[str, Any]:
    return {
        "schema": SCHEMA_VERSION,
        "generated": now_iso(),
        **(meta or {}),
        "summary": summarize(results),
        "results": [r.to_dict() for r in results],
    }


def write_results(results: list[Result], path: Path, meta: dict[str, Any] | None = None, timestamped: bool = True) -> list[Path]:
    """Write the JSON document to ``path`` (atomically) and, if asked, a timestamped copy beside it.

    The document is redacted first (evidence, reasons, metadata: every string); the objects
    passed in are not changed.  Raises :class:`infra.redact.SecretLeak` rather than write a
    document that still holds something that looks like a private key."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    doc = redact(document(results, meta))
    text = json.dumps(doc, ensure_ascii=False, indent=2, sort_keys=False) + "\n"
    leaks = find_secrets(text)
    if leaks:
        raise SecretLeak(f"{path}: refusing to write results that still hold what looks like a secret: {leaks[:3]}")
    written = []
    targets = [path]
    if timestamped:
        stamp = _dt.datetime.now(_dt.timezone.utc).strftime("%Y%m%dT%H%M%SZ")
        targets.append(path.with_name(f"{path.stem}-{stamp}{path.suffix}" if path.stem != "latest" else f"{stamp}{path.suffix}"))
    for t in targets:
        tmp = t.with_suffix(t.suffix + ".tmp")
        tmp.write_text(text, encoding="utf-8")
        os.replace(tmp, t)
        written.append(t)
    return written


def read_results(path: Path) -> list[Result]:
    doc = json.loads(Path(path).read_text(encoding="utf-8"))
    return [Result.from_dict(d) for d in doc["results"]]
