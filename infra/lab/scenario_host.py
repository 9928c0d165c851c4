"""Host scenarios (``checks/scenarios/host/<ID>.pass.sh`` / ``.fail.sh``), in the
manner of ComplianceAsCode's test scenarios: a script that puts a lab host into
a state where the control must pass, or must fail.

Scripts run as root inside the host's container (``infra.lab.netexec.host_run``:
fault injection, not the management path), with ``lib.sh`` prepended.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

from checks.catalog import SCENARIOS

SCENARIO_DIR = SCENARIOS / "host"
LIB = SCENARIO_DIR / "lib.sh"


def script_path(control_id: str, kind: str) -> Path:
    return SCENARIO_DIR / f"{control_id}.{kind}.sh"


def description(control_id: str, kind: str) -> str:
    first = script_path(control_id, kind).read_text(encoding="utf-8").splitlines()[0]
    return first.lstrip("# ").strip()


def script(control_id: str, kind: str) -> str:
    return LIB.read_text(encoding="utf-8") + "\n" + script_path(control_id, kind).read_text(encoding="utf-8")


NETNS_DIRECTIVE = "# dcops-scenario: netns"


def runs_in_netns(control_id: str, kind: str) -> bool:
    """Scripts marked ``# dcops-scenario: netns`` act only on the host's network namespace
    (``net.*`` sysctls): they run there with the machine's tools, because the lab's
    containers see /proc/sys read-only."""
    return NETNS_DIRECTIVE in script_path(control_id, kind).read_text(encoding="utf-8")


def lab_key(host: str) -> str:
    return "gw" if host == "gateway" else host


def apply(lab: str, host: str, control_id: str, kind: str, timeout: float = 120) -> subprocess.CompletedProcess:
    """Run the scenario on ``host`` of ``lab``; raises with the script's output when it fails."""
    from . import netexec

    run = netexec.ns_run if runs_in_netns(control_id, kind) else netexec.host_run
    r = run(lab, lab_key(host), ["bash", "-s"], input=script(control_id, kind), capture_output=True, text=True, timeout=timeout)
    if r.returncode != 0:
        raise RuntimeError(f"scenario {control_id}.{kind} on {host} failed (rc {r.returncode}): {(r.stderr or r.stdout).strip()[-500:]}")
    return r
