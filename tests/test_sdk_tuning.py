"""What dcops trims from Pulumi's per-resource work (infra/sdk_tuning.py, infra/pulumi_env.py), no lab.

- the Python SDK's stack trace of a resource keeps only the project's frames, first frame unchanged;
- the SDK's debug messages are dropped unless DCOPS_PULUMI_SDK_DEBUG=1;
- the pinned Pulumi CLI writes no automatic log into a PULUMI_HOME whose ``logs`` is the file
  ``quiet_automatic_log`` makes (and does without it: the check can fail);
- every pulumi run of dcops writes the state once, at the end, unless the caller says otherwise.
"""

from __future__ import annotations

import subprocess

import pulumi.log as sdk_log
import pytest
from pulumi.runtime import resource as sdk_resource

from infra import pulumi_env, sdk_tuning
from infra.paths import REPO, tool


@pytest.fixture
def restore_sdk():
    trace, debug = sdk_resource._get_stack_trace, sdk_log.debug
    # the SDK as it comes, even when an earlier test in this process ran the program (which tunes it)
    sdk_resource._get_stack_trace = getattr(trace, "_dcops_orig", trace)
    sdk_log.debug = getattr(debug, "_dcops_orig", debug)
    yield
    sdk_resource._get_stack_trace, sdk_log.debug = trace, debug


class _Resource:  # the SDK takes the frames below the third __init__ from the top (Resource, Custom..., the class)
    def __init__(self):
        self.trace = sdk_resource._get_stack_trace()


class _Custom(_Resource):
    def __init__(self):
        super().__init__()


class _Typed(_Custom):
    def __init__(self):
        super().__init__()


def _declare():
    return _Typed().trace


def test_stack_traces_keep_the_projects_frames_only(restore_sdk):
    full = _declare()
    uris = [f.pc.uri for f in full.frames]
    assert any("/site-packages/" in u or "/lib/python" in u for u in uris), uris  # pytest, pluggy...: not ours
    assert sdk_tuning.trim_stack_traces(REPO)
    assert not sdk_tuning.trim_stack_traces(REPO)  # once
    trimmed = _declare()
    kept = [f.pc.uri for f in trimmed.frames]
    assert kept and all(u.startswith(REPO.as_uri() + "/") and "/.venv/" not in u for u in kept), kept
    assert len(kept) < len(uris)
    assert trimmed.frames[0].pc.uri == full.frames[0].pc.uri and trimmed.frames[0].pc.uri.endswith("test_sdk_tuning.py")
    assert sdk_resource._get_source_position(trimmed) == sdk_resource._get_source_position(full) is not None


def test_stack_trace_not_starting_in_the_project_is_left_whole(restore_sdk, tmp_path):
    sdk_tuning.trim_stack_traces(tmp_path)  # nothing of this test is under tmp_path
    full = _declare()
    assert len(full.frames) > 3 and full.frames[0].pc.uri.endswith("test_sdk_tuning.py")


def test_debug_messages_dropped_unless_asked(restore_sdk, monkeypatch):
    sent = []
    monkeypatch.setattr(sdk_log, "_log", lambda *a: sent.append(a))
    monkeypatch.setattr(sdk_log, "get_engine", lambda: object())
    sdk_log.debug("before")
    assert len(sent) == 1
    monkeypatch.setenv(sdk_tuning.ENV_DEBUG, "1")
    assert not sdk_tuning.quiet_debug_log()
    monkeypatch.delenv(sdk_tuning.ENV_DEBUG)
    assert sdk_tuning.quiet_debug_log()
    sdk_log.debug("registering resource ...")
    sdk_log.info("still sent")
    assert [a[2] for a in sent] == ["before", "still sent"]


def _pulumi_in(home, monkeypatch) -> subprocess.CompletedProcess:
    env = pulumi_env._base_env(None)
    env["PULUMI_HOME"] = str(home)
    return subprocess.run([str(tool("pulumi")), "plugin", "ls"], env=env, capture_output=True, text=True,
                          stdin=subprocess.DEVNULL, timeout=120)


def test_pulumi_writes_no_automatic_log_in_a_quieted_home(tmp_path, monkeypatch):
    monkeypatch.delenv("DCOPS_PULUMI_LOGS", raising=False)
    loud, quiet = tmp_path / "loud", tmp_path / "quiet"
    loud.mkdir(), quiet.mkdir()
    assert _pulumi_in(loud, monkeypatch).returncode == 0
    assert (loud / "logs").is_dir() and list((loud / "logs").iterdir()), "pulumi made no automatic log: nothing to turn off"

    pulumi_env.quiet_automatic_log(quiet)
    assert (quiet / "logs").read_text().startswith("dcops:")
    r = _pulumi_in(quiet, monkeypatch)
    assert r.returncode == 0, r.stderr
    assert (quiet / "logs").is_file()

    pulumi_env.quiet_automatic_log(loud)  # an existing log directory goes
    assert (loud / "logs").is_file()
    monkeypatch.setenv("DCOPS_PULUMI_LOGS", "1")  # and comes back when asked
    pulumi_env.quiet_automatic_log(loud)
    assert _pulumi_in(loud, monkeypatch).returncode == 0 and (loud / "logs").is_dir()


def test_state_written_once_unless_the_caller_says_otherwise(monkeypatch):
    monkeypatch.delenv("PULUMI_SKIP_CHECKPOINTS", raising=False)
    assert pulumi_env.lab_env("tsk")["PULUMI_SKIP_CHECKPOINTS"] == "true"
    assert "export PULUMI_SKIP_CHECKPOINTS=true" in pulumi_env.shell_exports("tsk")
    monkeypatch.setenv("PULUMI_SKIP_CHECKPOINTS", "false")
    assert pulumi_env.lab_env("tsk")["PULUMI_SKIP_CHECKPOINTS"] == "false"
