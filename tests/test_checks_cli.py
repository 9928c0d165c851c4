"""`dcops check` without a lab: bad input is exit 2 (nothing run), no lab is exit 3."""

from __future__ import annotations

import subprocess
import sys

from infra.paths import REPO


def dcops(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", "from infra.cli import app; app()", *args], cwd=REPO,
                          capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL)


def test_help_teaches():
    r = dcops("check", "--help")
    assert r.returncode == 0
    for word in ("--only", "--target", "--output", "--name", "--province", "Exit codes", "monitor"):
        assert word in r.stdout


def test_unknown_control_or_target_is_bad_input():
    r = dcops("check", "--name", "tnolab", "--only", "DCOPS-NOPE-001")
    assert r.returncode == 2 and "unknown control" in r.stderr
    r = dcops("check", "--name", "tnolab", "--target", "atlantis")
    assert r.returncode == 2 and "unknown target" in r.stderr


def test_bad_province_is_bad_input(tmp_path):
    bad = tmp_path / "p.yaml"
    bad.write_text("province: {}\n")
    r = dcops("check", "--name", "tnolab", "--province", str(bad))
    assert r.returncode == 2


def test_lab_not_running_is_environment_problem(tmp_path):
    r = dcops("check", "--name", "tnolab", "--output", str(tmp_path / "r.json"))
    assert r.returncode == 3 and "not running" in r.stderr
    assert not (tmp_path / "r.json").exists()
