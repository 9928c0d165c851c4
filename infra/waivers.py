"""Waivers: approved, dated exceptions to a control, after InSpec's model.

A waivers file is committed beside the province file (``stacks/waivers-<province>.yaml``)
and validated like it: every problem at once, with file, line, field and fix
(:class:`WaiverError`, exit code 2 in the CLI).  Each waiver names::

    - control: DCOPS-SLA-003            # a control of checks/catalog.yaml (an unknown one is refused)
      targets: [x-hoa-binh]             # sites, gateway (gateway-standby), clusters or platforms it applies to; or ["*"]
      justification: ...                # why, and what is done meanwhile
      approver: ...                     # who approved it (name and position)
      approved_on: 2026-03-01           # optional
      reference: ...                    # optional: the approving document's number
      expires: 2026-06-30               # last day it applies (Vietnam's calendar day)

Applying a file to results (:func:`apply`): a ``fail`` or ``error`` that a waiver
covers becomes ``waived``; the result keeps the status it had, the justification,
the approver and the expiry in its ``waiver``.  A waived result is not a failure.  A
waiver whose expiry date is before the day the checks ran no longer applies: the
result keeps its status and its ``waiver`` says ``expired: true``.  A result that
passes is left alone (the waiver's summary counts it).
"""

from __future__ import annotations

import datetime as _dt
import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from pydantic import Field, ValidationError, field_validator, model_validator

from .model import Name, ProvinceFile, Strict, Text, bad, show
from .render.endpoint import GATEWAY, STANDBY_GATEWAY
from .validate import _FIXES, MAX_BYTES, Problem, YamlRefused, _compose, _fmt_path, _line_for

VN = _dt.timezone(_dt.timedelta(hours=7), "Asia/Ho_Chi_Minh")
"""Vietnam's time (UTC+7 all year): expiry dates are Vietnam's calendar days."""
WAIVABLE = ("fail", "error")
ALL = "*"
JUSTIFICATION_MIN = 20

ControlId = Field(pattern=r"^[A-Z][A-Z0-9]{1,9}(-[A-Z0-9]{1,10}){1,3}$")


class Waiver(Strict):
    control: str = ControlId
    targets: list[Name] = Field(min_length=1, max_length=2000)
    justification: Text
    approver: Name
    approved_on: _dt.date | None = None
    reference: Name | None = None
    expires: _dt.date

    @field_validator("justification")
    @classmethod
    def _long_enough(cls, v: str) -> str:
        if len(v) < JUSTIFICATION_MIN:
            raise bad(f"the justification is {len(v)} characters long",
                      f"explain in at least {JUSTIFICATION_MIN} characters why the control cannot be met and what is done meanwhile")
        return v

    @model_validator(mode="after")
    def _dates(self) -> "Waiver":
        if self.approved_on and self.expires < self.approved_on:
            raise ValueError(f"expires {self.expires} is before approved_on {self.approved_on}")
        if ALL in self.targets and len(self.targets) > 1:
            raise ValueError("'*' (every target) cannot be listed with other targets")
        return self


class WaiversFile(Strict):
    province: Name | None = Field(None, description="the province code the waivers are for")
    waivers: list[Waiver] = Field(default_factory=list, max_length=5000)


class WaiverError(Exception):
    """A waivers file that does not validate; carries every problem (like ProvinceError)."""

    def __init__(self, file: str, problems: list[Problem]):
        self.file, self.problems = file, problems
        super().__init__(f"{file}: {len(problems)} problem(s)\n" + "\n".join(p.render(file) for p in problems))


@dataclass
class Waivers:
    """A validated waivers file."""

    path: Path
    sha256: str
    model: WaiversFile
    lines: dict[str, int]

    def line_of(self, i: int) -> int | None:
        return self.lines.get(f"waivers[{i}]")


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with Path(path).open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


# ------------------------------------------------------------------ validation


def _structural(data: Any) -> list[Problem]:
    try:
        WaiversFile.model_validate(data)
    except ValidationError as e:
        out = []
        for err in e.errors():
            loc = [p for p in err["loc"] if not (isinstance(p, str) and p.startswith("function-"))]
            kind, msg = err["type"], err["msg"]
            ctx = err.get("ctx") or {}
            fix = ctx.get("fix") or _FIXES.get(kind, "correct the value")
            if kind == "extra_forbidden":
                msg = f"unknown key '{loc[-1]}'"
                fix = "remove it or correct its spelling: a waiver has control, targets, justification, approver, approved_on, reference, expires"
            elif kind == "missing":
                msg = f"required field '{loc[-1]}' is missing"
                fix = {"control": "name the control, e.g. DCOPS-SSH-006",
                       "targets": "list the targets it covers, e.g. [x-hoa-binh], or ['*'] for every target",
                       "justification": "say why the control cannot be met and what is done meanwhile",
                       "approver": "name who approved it (name and position)",
                       "expires": "give the last day it applies, e.g. 2026-06-30 (waivers do not last for ever)"}.get(str(loc[-1]), fix)
            elif kind == "value_error":
                msg = msg.removeprefix("Value error, ")
                fix = "correct the dates or the targets"
            elif kind == "string_pattern_mismatch" and loc and loc[-1] == "control":
                msg = f"{show(err.get('input'))} is not a control id"
                fix = "write a control id of checks/catalog.yaml, e.g. DCOPS-SSH-006"
            elif kind in ("date_from_datetime_parsing", "date_parsing", "date_type", "date_from_datetime_inexact"):
                fix = "write the date as YYYY-MM-DD, e.g. 2026-06-30"
            if "input" in err and kind not in ("missing", "extra_forbidden") and "(got" not in msg and show(err["input"]) not in msg:
                msg += f" (got {show(err['input'])})"
            out.append(Problem(_fmt_path(loc), msg, fix))
        return out
    return []


def _gateways(province: ProvinceFile) -> set[str]:
    """The hubs' target names: the gateway ('hub' is an alias of it) and, when the province declares
    a standby hub (wan.hubs[1]), the standby gateway."""
    return {GATEWAY, "hub"} | ({STANDBY_GATEWAY} if province.wan.standby is not None else set())


def _applies(kinds: list[str], province: ProvinceFile) -> set[str]:
    out: set[str] = set()
    for k in kinds:
        out |= {"endpoint": set(province.site_by_id), "wan_link": set(province.site_by_id), "gateway": _gateways(province),
                "cluster": set(province.cluster_by_id), "platform": set(province.platform_by_id)}.get(k, set())
    return out


def _semantic(wf: WaiversFile, catalog, province: ProvinceFile | None) -> list[Problem]:
    P: list[Problem] = []
    known = {c.id: c for c in catalog.controls} if catalog is not None else None
    if province is not None and wf.province and wf.province != province.province.code:
        P.append(Problem("province", f"the waivers are for province {wf.province}, the province file is {province.province.code}",
                         "use the waivers file of this province, or correct 'province'"))
    seen: dict[tuple[str, str], int] = {}
    for i, w in enumerate(wf.waivers):
        if known is not None and w.control not in known:
            P.append(Problem(f"waivers[{i}].control", f"control {w.control} is not in the catalog: a waiver for an unknown control is refused",
                             "write a control id of checks/catalog.yaml (dcops check --list shows them), or remove the waiver"))
            continue
        if province is not None and known is not None:
            allowed = _applies(list(known[w.control].applies_to), province)
            for j, t in enumerate(w.targets):
                if t != ALL and t not in allowed:
                    P.append(Problem(f"waivers[{i}].targets[{j}]",
                                     f"{show(t)} is not a target of {w.control} in this province "
                                     f"(it applies to {', '.join(known[w.control].applies_to)})",
                                     "name a site, 'gateway'" + (f", '{STANDBY_GATEWAY}'" if province.wan.standby else "")
                                     + ", a cluster or a platform the control checks, or '*' for all"))
        for t in w.targets:
            k = (w.control, t)
            if k in seen:
                P.append(Problem(f"waivers[{i}].targets", f"{w.control} on {t} is already waived by waivers[{seen[k]}]",
                                 "keep one waiver per control and target"))
            else:
                seen[k] = i
    return P


def check_text(text: str, catalog=None, province: ProvinceFile | None = None) -> tuple[WaiversFile | None, dict[str, int], list[Problem]]:
    try:
        data, lines, problems = _compose(text)
    except YamlRefused as e:
        return None, {}, [Problem("", e.message.replace("province file", "waivers file"), e.fix, e.problem_mark.line + 1 if e.problem_mark else None)]
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        return None, {}, [Problem("", f"not valid YAML: {getattr(e, 'problem', e)}", "fix the YAML syntax", mark.line + 1 if mark else None)]
    if data is None:
        data = {}
    if not isinstance(data, dict):
        return None, lines, [Problem("", "the file is not a mapping", "start from stacks/waivers-lab.yaml: 'waivers:' and a list")]
    problems = problems + _structural(data)
    model = None
    if not problems:
        model = WaiversFile.model_validate(data)
        problems += _semantic(model, catalog, province)
    problems = sorted({(p.path, p.message): Problem(p.path, p.message, p.fix, p.line or _line_for(lines, p.path))
                       for p in problems}.values(), key=lambda p: (p.line or 0, p.path))
    return (None if problems else model), lines, problems


def load(path: str | Path, catalog=None, province: ProvinceFile | None = None) -> Waivers:
    """Load and validate a waivers file or raise :class:`WaiverError` with every problem.

    ``catalog`` (checks.catalog) refuses unknown controls; ``province`` refuses targets
    the control does not check and waivers of another province."""
    path = Path(path)
    try:
        raw = path.read_bytes()[: MAX_BYTES + 1]
        if len(raw) > MAX_BYTES:
            raise WaiverError(str(path), [Problem("", "the file is larger than 4 MiB", "check that this is a waivers file")])
        text = raw.decode("utf-8")
    except FileNotFoundError:
        raise WaiverError(str(path), [Problem("", "file not found", "check the path (waivers files live in stacks/)")]) from None
    except OSError as e:
        raise WaiverError(str(path), [Problem("", f"cannot be read: {e.strerror}", "check the path and its permissions")]) from None
    except UnicodeDecodeError as e:
        raise WaiverError(str(path), [Problem("", f"not UTF-8: {e}", "save the file as UTF-8")]) from None
    model, lines, problems = check_text(text, catalog, province)
    if problems:
        raise WaiverError(str(path), problems)
    assert model is not None
    return Waivers(path=path, sha256=hashlib.sha256(raw).hexdigest(), model=model, lines=lines)


# ------------------------------------------------------------------ applying


def vn_date(when: str | _dt.datetime | _dt.date | None) -> _dt.date:
    """Vietnam's calendar day of a timestamp (today when None)."""
    if when is None:
        return _dt.datetime.now(VN).date()
    if isinstance(when, str):
        when = _dt.datetime.fromisoformat(when.replace("Z", "+00:00"))
    if isinstance(when, _dt.datetime):
        if when.tzinfo is None:
            when = when.replace(tzinfo=_dt.timezone.utc)
        return when.astimezone(VN).date()
    return when


def unwaive(r: dict) -> dict:
    """A result as it was before any waiver was applied."""
    w = r.get("waiver")
    if not isinstance(w, dict):
        return r
    r = {k: v for k, v in r.items() if k != "waiver"}
    if r.get("status") == "waived" and w.get("status") in WAIVABLE:
        r["status"] = w["status"]
    return r


def apply(results: list[dict], waivers: Waivers, *, checked_on: _dt.date) -> tuple[list[dict], list[dict]]:
    """Apply ``waivers`` to result dicts (as written by checks.result): returns the new
    results and one summary per waiver (applied, expired, and passing counts).

    Waivers already applied (by ``dcops check --waivers``) are undone first, so the file
    given here is the one that counts."""
    index: dict[tuple[str, str], int] = {}
    for i, w in enumerate(waivers.model.waivers):
        for t in w.targets:
            index[(w.control, t)] = i
    summary = [{
        "index": i, "line": waivers.line_of(i), "control": w.control, "targets": list(w.targets),
        "justification": w.justification, "approver": w.approver,
        "approved_on": w.approved_on.isoformat() if w.approved_on else None, "reference": w.reference,
        "expires": w.expires.isoformat(), "expired": w.expires < checked_on,
        "applied": 0, "expired_matches": 0, "passing": 0, "other": 0,
    } for i, w in enumerate(waivers.model.waivers)]
    out = []
    for r in results:
        r = unwaive(r)
        ctl, tgt = str(r.get("control")), str(r.get("target"))
        tid = "gateway" if tgt == "hub" else tgt
        i = index.get((ctl, tgt), index.get((ctl, tid), index.get((ctl, ALL))))
        if i is None:
            out.append(r)
            continue
        s = summary[i]
        info = {"file": str(waivers.path), "index": i, "justification": s["justification"], "approver": s["approver"],
                "approved_on": s["approved_on"], "reference": s["reference"], "expires": s["expires"]}
        if r.get("status") not in WAIVABLE:
            s["passing" if r.get("status") == "pass" else "other"] += 1
            out.append(r)
        elif s["expired"]:
            s["expired_matches"] += 1
            out.append({**r, "waiver": {**info, "status": r["status"], "expired": True}})
        else:
            s["applied"] += 1
            out.append({**r, "status": "waived", "waiver": {**info, "status": r["status"], "expired": False}})
    return out, summary


def describe(waivers: Waivers, summary: list[dict], checked_on: _dt.date) -> dict:
    """What a results document or a report keeps about the waivers file."""
    return {"file": str(waivers.path), "sha256": waivers.sha256, "checked_on": checked_on.isoformat(), "waivers": summary}
