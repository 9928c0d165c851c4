"""`dcops check` without a lab: bad input is exit 2 (nothing run), no lab is exit 3."""

from __future__ import annotations

from conftest import dcops


def test_help_teaches():
    r = dcops("check", "--help")
    assert r.returncode == 0
    for word in ("--only", "--target", "--output", "--stack", "--config-file", "--list", "Exit", "not assessed"):
        assert word in r.stdout


def test_unknown_control_or_target_is_bad_input():
    r = dcops("check", "-s", "thanhhoa", "--only", "DCOPS-NOPE-001")
    assert r.returncode == 2 and "unknown control" in r.stderr
    r = dcops("check", "-s", "thanhhoa", "--target", "atlantis")
    assert r.returncode == 2 and "unknown target" in r.stderr


def test_bad_province_is_bad_input(tmp_path):
    bad = tmp_path / "p.yaml"
    bad.write_text("province: {}\n")
    cfg = tmp_path / "Pulumi.x.yaml"
    cfg.write_text(f"config:\n  dcops:province: {bad}\n  dcops:environment: stacks/env/thanhhoa.yaml\n")
    r = dcops("check", "-s", "x", "--config-file", str(cfg))
    assert r.returncode == 2 and "problem" in r.stderr


def test_lab_not_running_is_environment_problem(tmp_path):
    r = dcops("check", "--output", str(tmp_path / "r.json"), env={"DCOPS_LAB": "tnolab", "DCOPS_LAB_ROOT": str(tmp_path)})
    assert r.returncode == 3 and "dcops lab up" in r.stderr
    assert not (tmp_path / "r.json").exists()


def test_cli_and_library_check_the_same_number_of_hosts_at_once():
    """`dcops check --parallel` and `check_hosts` (used by drift, the bench and the tests) default alike."""
    import inspect

    from checks.controls import host as H
    from infra import check_cli

    opt = inspect.signature(check_cli.check).parameters["parallel"].default
    assert opt.default == H.DEFAULT_PARALLEL == inspect.signature(H.check_hosts).parameters["parallel"].default
