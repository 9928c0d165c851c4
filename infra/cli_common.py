"""What every ``dcops`` command shares: exit codes, consoles, loading a province or a stack.

Below the commands (:mod:`infra.cli` and the ``*_cli`` modules), above the model, so the
CLI has no import circle.

Exit codes, for scripts: 0 success; 1 something checked failed (a control, a host, an SLA);
2 bad input (a province file or environment that does not validate, an unknown option)
and nothing was changed; 3 an environment problem (a missing tool, a server that cannot be
reached or refuses our credentials, the lab not running; for ``dcops check``, also a cluster whose
API server did not answer: its controls are errors, the rest was checked and written).
"""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path
from typing import Optional

import typer
from rich.console import Console

from .validate import ProvinceError, load_province

EXIT_OK, EXIT_FAILED, EXIT_BAD_INPUT, EXIT_ENV = 0, 1, 2, 3

err = Console(stderr=True, highlight=False, soft_wrap=True)
out = Console(highlight=False, soft_wrap=True)

DEFAULT_PROVINCE = Path("stacks/province-lab.yaml")

StackOpt = typer.Option(
    None, "--stack", "-s",
    help="the stack (one environment of one province): stacks/Pulumi.<stack>.yaml; default $DCOPS_STACK or 'lab' "
         "(the running lab's environment)",
)
ConfigFileOpt = typer.Option(
    None, "--config-file",
    help="the stack's config file, when not stacks/Pulumi.<stack>.yaml (as pulumi's --config-file); "
         "default $DCOPS_CONFIG_FILE",
)


def exit_with_problems(file: str, problems, outcome: str = "nothing was changed"):
    """Print every problem of a file (province, environment, waivers) and exit 2 (bad input)."""
    for p in problems:
        err.print(p.render(file), markup=False)
    err.print(f"{file}: {len(problems)} problem(s); {outcome}.", markup=False)
    raise typer.Exit(EXIT_BAD_INPUT)


def province_or_exit(path: Path):
    """Load and validate a province file; on problems print them all and exit 2."""
    try:
        return load_province(path)
    except ProvinceError as e:
        exit_with_problems(e.file, e.problems)


def _netns_inode(path: str) -> int | None:
    try:
        return os.stat(path).st_ino
    except OSError:
        return None


def enter_management_netns(ns: str) -> None:
    """Re-execute this dcops command inside the environment's management network namespace
    (``ip netns exec NS``), unless it already runs there. Exit 3 if the namespace is missing."""
    want = _netns_inode(f"/run/netns/{ns}")
    if want is None:
        err.print(f"error: the environment's management namespace '{ns}' does not exist "
                  "(for a lab: is it up? `dcops lab status`); nothing was changed.", markup=False)
        raise typer.Exit(EXIT_ENV)
    if _netns_inode("/proc/self/ns/net") == want:
        return
    if os.environ.get("DCOPS_NETNS_REEXEC") == ns:  # the re-exec did not land there: never loop
        err.print(f"error: could not enter the management namespace '{ns}'", markup=False)
        raise typer.Exit(EXIT_ENV)
    ip = shutil.which("ip") or "/usr/sbin/ip"
    os.environ["DCOPS_NETNS_REEXEC"] = ns
    sys.stdout.flush()
    sys.stderr.flush()
    os.execv(ip, [ip, "netns", "exec", ns, sys.executable, "-m", "infra.cli", *sys.argv[1:]])


def stack_or_exit(stack: Optional[str], config_file: Optional[Path], *, enter_netns: bool = True):
    """Load and validate a stack's environment and province file; print every problem and exit
    2 (bad input) or 3 (the lab is not up). With ``enter_netns``, continue inside the
    environment's management namespace."""
    from .environment import EnvironmentError, EnvironmentMissing, load

    try:
        st = load(stack, config_file)
    except EnvironmentMissing as e:
        err.print(f"error: {e}; nothing was changed.", markup=False)
        raise typer.Exit(e.code)
    except EnvironmentError as e:
        exit_with_problems(e.file, e.problems, "in the environment; nothing was changed or contacted")
    except ProvinceError as e:
        exit_with_problems(e.file, e.problems)
    if enter_netns and st.env.management_netns:
        enter_management_netns(st.env.management_netns)
    return st
