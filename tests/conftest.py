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
from dataclasses import dataclass
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


# ------------------------------------------------------------------ stand-in hosts for the host controls


@dataclass
class Out:
    rc: int
    stdout: str
    stderr: str = ""


class FakeHost:
    """testinfra's Host for the controls: ``answers`` maps a command's first words to its
    output; commands that read files (``cat --``) run for real over ``root``, which plays the host's /."""

    def __init__(self, root: Path, answers: dict[str, Out]):
        self.root, self.answers, self.backend = root, answers, None

    def run(self, cmd: str) -> Out:
        if "cat --" in cmd:
            local = cmd.replace(" /etc/", f" {self.root}/etc/").replace("'/etc/", f"'{self.root}/etc/")
            p = subprocess.run(["/bin/sh", "-c", local], capture_output=True, text=True)
            return Out(p.returncode, p.stdout.replace(str(self.root), ""), p.stderr)
        for prefix, out in self.answers.items():
            if cmd.startswith(prefix):
                return out
        return Out(127, "", f"fake host: no answer for {cmd!r}")
