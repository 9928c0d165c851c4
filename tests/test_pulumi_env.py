"""Recovery of the lab's Pulumi file backend after a killed update (no lab needed)."""

from __future__ import annotations

import json
import os
import time

from infra import pulumi_env


def test_unreadable_checkpoint_is_restored_from_newest_readable_backup(tmp_path, monkeypatch):
    monkeypatch.setenv("DCOPS_LAB_ROOT", str(tmp_path))
    root = pulumi_env.state_dir("trep") / ".pulumi"
    cp = root / "stacks" / "dcops" / "lab.json"
    backups = root / "backups" / "dcops" / "lab"
    backups.mkdir(parents=True)
    cp.parent.mkdir(parents=True)
    old, new, broken = backups / "lab.1.json", backups / "lab.2.json", backups / "lab.3.json"
    old.write_text(json.dumps({"version": 3, "checkpoint": {"n": 1}}))
    new.write_text(json.dumps({"version": 3, "checkpoint": {"n": 2}}))
    broken.write_text('{"version": 3, "checkp')  # newest, but cut short too
    for i, f in enumerate((old, new, broken)):
        os.utime(f, (time.time() - 100 + i, time.time() - 100 + i))
    cp.write_bytes(b"")  # what the kill left

    done = pulumi_env.repair_checkpoints("trep")
    assert len(done) == 1 and "restored from lab.2.json" in done[0]
    assert json.loads(cp.read_text())["checkpoint"] == {"n": 2}
    assert pulumi_env.repair_checkpoints("trep") == []  # a readable checkpoint is left alone


def test_no_readable_backup_is_said_not_guessed(tmp_path, monkeypatch):
    monkeypatch.setenv("DCOPS_LAB_ROOT", str(tmp_path))
    cp = pulumi_env.state_dir("trep") / ".pulumi" / "stacks" / "dcops" / "lab.json"
    cp.parent.mkdir(parents=True)
    cp.write_text("{")
    done = pulumi_env.repair_checkpoints("trep")
    assert len(done) == 1 and "no readable backup" in done[0]
    assert cp.read_text() == "{"


def test_pulumi_runs_with_a_private_tmpdir_removed_after(tmp_path, monkeypatch):
    """pulumi-kubernetes writes a copy of its kubeconfig (client key included) to
    $TMPDIR/kubeconfigNNN at every configure and never removes it. dcops runs pulumi with a TMPDIR
    of its own (0700), removed when pulumi ends, in both the captured and the streamed mode. The
    stand-in writes there as the provider does; tests/test_lab_workloads.py checks the real one."""
    import tempfile

    monkeypatch.setenv("DCOPS_LAB_ROOT", str(tmp_path / "labs"))
    fake = tmp_path / "pulumi"
    fake.write_text('#!/bin/sh\nstat -c %a "$TMPDIR"\necho "client-key-data: x" > "$TMPDIR/kubeconfig123"\necho "$TMPDIR"\n')
    fake.chmod(0o755)
    monkeypatch.setattr(pulumi_env, "tool", lambda name: fake)
    for capture in (True, False):
        lines: list[str] = []
        cp = pulumi_env.pulumi(["version"], "tmpd", capture=capture, on_line=lines.append)
        mode, tmp = cp.stdout.split()
        assert mode == "700" and os.path.basename(tmp).startswith("dcops-pulumi-"), cp.stdout
        assert os.path.dirname(tmp) == tempfile.gettempdir()
        assert not os.path.exists(tmp), f"{tmp} (with the kubeconfig copy) is left behind"
