"""The control catalog: ``checks/catalog.yaml`` loaded and validated.

The catalog is data (the report lists it); each control's test is code in
:mod:`checks.controls` registered under the same id.  Loading fills what a
control leaves implicit so that every control carries a reference to every
standard: a missing TCVN 14423:2025 mapping becomes an explicit "unconfirmed"
entry, never silence; Decree 85/2016 and Circular 12/2022 are filled for the
controls of level 3.
"""

from __future__ import annotations

import re
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

CATALOG = Path(__file__).with_name("catalog.yaml")
SCENARIOS = Path(__file__).with_name("scenarios")

Severity = Literal["low", "medium", "high", "critical"]
AppliesTo = Literal["endpoint", "gateway", "cluster", "platform", "wan_link"]

_NIST = re.compile(r"^(AC|AT|AU|CA|CM|CP|IA|IR|MA|MP|PE|PL|PM|PS|PT|RA|SA|SC|SI|SR)-\d{1,2}(\(\d{1,2}\))?$")

TCVN_14423 = "TCVN 14423:2025"
TCVN_14423_TITLE = "An ninh mạng – Yêu cầu đối với hệ thống thông tin quan trọng"
UNCONFIRMED_14423 = (
    "TCVN 14423:2025 (An ninh mạng – Yêu cầu đối với hệ thống thông tin quan trọng, 29/05/2025): clause "
    "unconfirmed: the standard's text has not been available; the requirement is expected to carry over "
    "from TCVN 11930:2017"
)
DECREE_85_LEVEL3 = ("Nghị định 85/2016/NĐ-CP, Điều 9 (tiêu chí xác định cấp độ 3: criteria of level 3, which make "
                    "the level-3 requirements of TCVN 11930:2017 clause 7 apply)")
CIRCULAR_12 = ("Thông tư 12/2022/TT-BTTTT (details Decree 85/2016: the level dossier and the basic requirements by "
               "level); article number unconfirmed")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class TcvnRef(_Strict):
    clause: str | None = Field(None, description="clause number, only when confirmed")
    section: str | None = Field(None, pattern=r"^\d+(\.\d+){1,3}$",
                                description="a finer number inside the clause, by the standard's pattern: never confirmed here")
    group: str | None = Field(None, description="the requirement group the control maps to")
    confirmed: bool = False
    note: str = ""

    @model_validator(mode="after")
    def _clause_means_confirmed(self) -> "TcvnRef":
        if self.clause and not self.confirmed:
            raise ValueError("a clause number is given only when confirmed: set confirmed: true or drop the clause")
        if self.confirmed and not self.clause:
            raise ValueError("confirmed: true needs the clause number")
        if not self.clause and not self.group and not self.note:
            raise ValueError("say which requirement group it maps to, or why it is unconfirmed")
        if self.section and not (self.clause and self.section.startswith(self.clause + ".")):
            raise ValueError(f"section {self.section} lies outside the clause {self.clause}")
        return self

    def render(self, standard: str) -> str:
        where = f"clause {self.clause}" if self.clause else "clause unconfirmed"
        if self.clause and standard.startswith("TCVN 11930"):
            where += " (level 3; level L: clause L+4)"
        if self.section:
            where += f", section {self.section} (by the standard's pattern, unconfirmed)"
        return f"{standard}, {where}" + (f": {self.group}" if self.group else "") + (f" ({self.note})" if self.note else "")


class CisRef(_Strict):
    benchmark: str
    item: str
    number: str | None = None

    def render(self) -> str:
        return f"{self.benchmark} {self.number or '(item number unconfirmed)'}: {self.item}"


class References(_Strict):
    tcvn_11930_2017: TcvnRef
    tcvn_14423_2025: TcvnRef = Field(default_factory=lambda: TcvnRef(note=UNCONFIRMED_14423))
    decree_85_2016: str | None = None
    circular_12_2022: str | None = None
    cis: list[CisRef] = Field(min_length=1)
    nist_800_53: list[str] = Field(min_length=1)

    @field_validator("nist_800_53")
    @classmethod
    def _nist(cls, v: list[str]) -> list[str]:
        bad = [x for x in v if not _NIST.match(x)]
        if bad:
            raise ValueError(f"not NIST SP 800-53 control ids: {bad}")
        return v


class Control(_Strict):
    id: str = Field(pattern=r"^DCOPS-[A-Z0-9]{2,4}-\d{3}$")
    title_vi: str = Field(min_length=5)
    title_en: str = Field(min_length=5)
    rationale: str = Field(min_length=10)
    severity: Severity
    applies_to: list[AppliesTo] = Field(min_length=1)
    levels: list[int] = Field(min_length=1)
    evidence: list[str] = Field(min_length=1)
    params: dict[str, Any] = Field(default_factory=dict)
    references: References

    @field_validator("levels")
    @classmethod
    def _levels(cls, v: list[int]) -> list[int]:
        if any(x < 1 or x > 5 for x in v) or len(set(v)) != len(v):
            raise ValueError("levels are distinct security levels 1 to 5")
        return sorted(v)

    @model_validator(mode="before")
    @classmethod
    def _legal_refs(cls, data: Any) -> Any:
        """Decree 85/2016 and Circular 12/2022 for every control of level 3 (unless it says otherwise)."""
        if isinstance(data, dict) and 3 in (data.get("levels") or []) and isinstance(data.get("references"), dict):
            refs = dict(data["references"])
            refs.setdefault("decree_85_2016", DECREE_85_LEVEL3)
            refs.setdefault("circular_12_2022", CIRCULAR_12)
            data = {**data, "references": refs}
        return data

    @property
    def family(self) -> str:
        return self.id.split("-")[1]

    def applies_at(self, level: int) -> bool:
        return level in self.levels

    def reference_lines(self, audit_standard: str | None = None) -> list[str]:
        """Human-readable references; the province's audit standard first."""
        tcvn = [("TCVN 11930:2017", self.references.tcvn_11930_2017), (TCVN_14423, self.references.tcvn_14423_2025)]
        if audit_standard == TCVN_14423:
            tcvn.reverse()
        lines = [ref.render(std) for std, ref in tcvn]
        lines += [x for x in (self.references.decree_85_2016, self.references.circular_12_2022) if x]
        lines += [c.render() for c in self.references.cis]
        lines.append("NIST SP 800-53 Rev. 5: " + ", ".join(self.references.nist_800_53))
        return lines


class Catalog(_Strict):
    version: int
    standards: dict[str, str]
    controls: list[Control] = Field(min_length=1)

    @model_validator(mode="after")
    def _unique(self) -> "Catalog":
        seen: set[str] = set()
        dups = [c.id for c in self.controls if c.id in seen or seen.add(c.id)]
        if dups:
            raise ValueError(f"duplicate control ids: {dups}")
        return self

    def get(self, control_id: str) -> Control:
        for c in self.controls:
            if c.id == control_id:
                return c
        raise KeyError(control_id)

    def ids(self) -> list[str]:
        return [c.id for c in self.controls]

    def for_kind(self, kind: str) -> list[Control]:
        return [c for c in self.controls if kind in c.applies_to]


def load_catalog(path: Path | str = CATALOG) -> Catalog:
    data = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    return Catalog.model_validate(data)


@lru_cache(maxsize=1)
def catalog() -> Catalog:
    return load_catalog()


def scenario_files(control_id: str) -> dict[str, list[Path]]:
    """The pass and fail scenarios shipped for a control (any file named ``<ID>.pass.*``/``<ID>.fail.*``),
    and those that make its evidence unreadable (``<ID>.unreadable.*``: the result must be an error)."""
    out: dict[str, list[Path]] = {"pass": [], "fail": [], "unreadable": []}
    if SCENARIOS.exists():
        for p in sorted(SCENARIOS.rglob(f"{control_id}.*")):
            parts = p.name.split(".")
            if len(parts) >= 3 and parts[1] in out:
                out[parts[1]].append(p)
            elif len(parts) >= 4 and parts[-2] in out:  # <ID>.<variant>.pass.sh
                out[parts[-2]].append(p)
    return out
