"""What the tests share (a test module never imports another; they import from here).

- :func:`dcops`: run the CLI as an operator would (a child process, no TTY);
- :func:`lab_stack`: the options that name a lab's stack (``-s lab --config-file <lab dir>/Pulumi.lab.yaml``):
  the product reaches a lab only through that environment, never through a lab name;
- :func:`write_lab_environment`: the environment of a lab started piecewise (``infra.lab.hosts.up``
  without ``dcops lab up``), as ``lab up`` writes it.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def dcops(*args: str, timeout: float = 900, env: dict | None = None, netns: str | None = None) -> subprocess.CompletedProcess:
    """``dcops ARGS`` (optionally run inside a network namespace, as an operator on a workstation there)."""
    argv = [sys.executable, "-m", "infra.cli", *args]
    if netns:
        argv = ["ip", "netns", "exec", netns, *argv]
    return subprocess.run(argv, cwd=REPO, capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL,
                          env={**os.environ, **(env or {})})


def lab_stack(lab: str) -> list[str]:
    from infra.lab.environment import config_path

    return ["-s", "lab", "--config-file", str(config_path(lab))]


def write_lab_environment(lab: str, model, province: Path) -> Path:
    from infra.lab import environment as labenv
    from infra.pulumi_env import ensure_passphrase

    ensure_passphrase(lab)
    return labenv.write(lab, model, Path(province))
