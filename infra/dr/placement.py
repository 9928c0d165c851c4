"""Where each platform runs: the placement record of a stack.

``dcops dr failover`` and ``dcops dr failback`` write it; everything that must follow a platform
reads it: the Pulumi program (a platform moved to its DR cluster is declared running there and at
0 replicas at home, so a ``pulumi up`` after a failover keeps it where it is instead of scaling it
back down), the cluster checks and the SLA probes (they look for it on the cluster it runs on).

The record is ``<work_dir>/dr/placement.json`` (the stack's work dir, :attr:`Stack.work_dir`)::

    {"version": 1,
     "platforms": {"motcua": {"cluster": "dr", "home": "primary", "mode": "warm",
                              "since": "2026-12-04T23:10:00Z", "operation": "failover"}},
     "history": [{"operation": "failover", "platforms": ["motcua"], "started": "...",
                  "finished": "...", "duration_s": 12.3, "outcome": "ok", "dry_run": false}, ...]}

Only platforms away from home are under ``platforms``; ``history`` is the evidence of every
exercise (an auditor asks for the last one). The file is replaced atomically (write, fsync,
rename), so a killed command leaves the old record or the new one, never half of one.
"""

from __future__ import annotations

import json
import os
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

RECORD = Path("dr") / "placement.json"
VERSION = 1
HISTORY_MAX = 200


class PlacementError(ValueError):
    """The record cannot be read (corrupt, or written by a newer dcops)."""


def record_path(work_dir: Path) -> Path:
    return Path(work_dir) / RECORD


def now() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def read(work_dir: Path) -> dict[str, Any]:
    """The whole record (an empty one when there is none)."""
    p = record_path(work_dir)
    try:
        data = json.loads(p.read_text())
    except FileNotFoundError:
        return {"version": VERSION, "platforms": {}, "history": []}
    except (OSError, ValueError) as e:
        raise PlacementError(f"{p}: cannot be read ({e}); fix or move it aside, then run `dcops dr status`") from None
    if not isinstance(data, dict) or data.get("version") != VERSION or not isinstance(data.get("platforms"), dict):
        raise PlacementError(f"{p}: not a placement record of version {VERSION}")
    data.setdefault("history", [])
    return data


def placement(work_dir: Path) -> dict[str, str]:
    """platform id -> the cluster it runs on, for the platforms away from home."""
    return {pid: str(r["cluster"]) for pid, r in read(work_dir)["platforms"].items() if isinstance(r, dict) and r.get("cluster")}


def write(work_dir: Path, data: dict[str, Any]) -> Path:
    p = record_path(work_dir)
    p.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    data = {**data, "version": VERSION, "history": list(data.get("history", []))[-HISTORY_MAX:]}
    tmp = p.with_suffix(f".tmp.{os.getpid()}")
    with open(tmp, "w") as f:
        json.dump(data, f, indent=2, sort_keys=True)
        f.write("\n")
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, p)
    return p


def set_running(work_dir: Path, platform: str, cluster: str, home: str, mode: str, operation: str) -> None:
    """Record that ``platform`` runs on ``cluster`` (home: removed from the record)."""
    data = read(work_dir)
    if cluster == home:
        data["platforms"].pop(platform, None)
    else:
        data["platforms"][platform] = {"cluster": cluster, "home": home, "mode": mode, "since": now(), "operation": operation}
    write(work_dir, data)


def add_history(work_dir: Path, entry: dict[str, Any]) -> None:
    data = read(work_dir)
    data["history"].append(entry)
    write(work_dir, data)


def last_exercise(work_dir: Path, operation: str | None = None) -> dict[str, Any] | None:
    """The latest history entry (of ``operation``) that was not a dry run."""
    for e in reversed(read(work_dir)["history"]):
        if not e.get("dry_run") and (operation is None or e.get("operation") == operation):
            return e
    return None
