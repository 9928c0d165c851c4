"""Shared, locking Pulumi state in the lab's S3-compatible object store (SeaweedFS).

One lab of its own (random name) with only what the object store needs: its management
namespace ``<lab>-mgmt`` (made here, recorded in the lab's state, removed at the end; no
control plane, no WAN host) and the object store (:mod:`infra.lab.objectstore`).  Two
"engineers" (own project checkout, own PULUMI_HOME, the team's passphrase) run the Pulumi
CLI against one stack in the bucket, inside ``<lab>-mgmt`` as from a management
workstation.  The program is tiny: dynamic resources that sleep, so updates overlap.

Shown: while one ``pulumi up`` runs, the other gets Pulumi's lock error and changes
nothing; two started at the same instant never both run; the state afterwards is
readable and complete; wrong or missing keys are refused; the secret is never in a log.
Figures (start time, memory, ``pulumi up`` on the file vs the S3 backend) are printed.
"""

from __future__ import annotations

import json
import os
import random
import re
import shutil
import stat
import string
import subprocess
import sys
import time
from pathlib import Path

import pytest

from infra.lab import objectstore
from infra.lab.state import LabState, pid_alive
from infra.paths import REPO, ToolMissing, lab_dir, tool, tools_bin

pytestmark = pytest.mark.lab

STACK = "dev"
NAPS = 3
LOCKED = re.compile(r"the stack is currently locked by \d+ lock\(s\)")
LOCKS = ".pulumi/locks/"

PROGRAM = '''\
"""Tiny program: NAP_COUNT dynamic resources whose create/update sleep NAP_SECONDS."""
import os
import time

import pulumi
from pulumi.dynamic import CreateResult, DiffResult, Resource, ResourceProvider, UpdateResult


class NapProvider(ResourceProvider):
    def create(self, props):
        time.sleep(float(props["seconds"]))
        return CreateResult(id_=props["label"], outs=props)

    def diff(self, _id, olds, news):
        return DiffResult(changes=olds.get("round") != news.get("round"))

    def update(self, _id, _olds, news):
        time.sleep(float(news["seconds"]))
        return UpdateResult(outs=news)


class Nap(Resource):
    def __init__(self, name, props):
        super().__init__(NapProvider(), name, props)


rnd = os.environ.get("NAP_ROUND", "0")
for i in range(int(os.environ.get("NAP_COUNT", "3"))):
    Nap(f"nap-{i}", {"label": f"nap-{i}", "seconds": os.environ.get("NAP_SECONDS", "0"), "round": rnd})
pulumi.export("round", rnd)
'''


# --------------------------------------------------------------------------- helpers


def dcops(*args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", "from infra.cli import app; app()", *args], cwd=REPO,
                          capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL)


class Engineer:
    """One person's checkout of the tiny project, own PULUMI_HOME, the lab's backend."""

    def __init__(self, lab: dict, root: Path, who: str, backend: dict[str, str] | None = None):
        self.lab = lab
        self.dir = root / who
        self.dir.mkdir(parents=True, exist_ok=True)
        (self.dir / "home").mkdir(exist_ok=True)
        (self.dir / "Pulumi.yaml").write_text("name: sharedlock\nruntime: python\n"
                                              "description: dcops shared-backend test\n")
        (self.dir / "__main__.py").write_text(PROGRAM)
        env = {k: v for k, v in os.environ.items()
               if not k.startswith("PULUMI_") and k not in objectstore.AWS_CLEAR and k != "KUBECONFIG"}
        venv_bin = str(Path(sys.executable).parent)
        env["PATH"] = os.pathsep.join(dict.fromkeys([str(tools_bin()), venv_bin, *env.get("PATH", "").split(os.pathsep)]))
        env.update({
            "PULUMI_HOME": str(self.dir / "home"),
            "PULUMI_SKIP_UPDATE_CHECK": "true",
            "PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION": "true",
            "PULUMI_DIY_BACKEND_NO_LEGACY_WARNING": "true",
            "PULUMI_SELF_MANAGED_STATE_NO_LEGACY_WARNING": "true",
            "PULUMI_CONFIG_PASSPHRASE_FILE": str(lab["passphrase"]),
            "PULUMI_PYTHON_CMD": sys.executable,
            "PYTHONUNBUFFERED": "1",
            "NAP_COUNT": str(NAPS),
        })
        env.update(backend if backend is not None else objectstore.pulumi_env(lab["name"]))
        self.env = env

    def argv(self, *args: str) -> list[str]:
        return ["ip", "netns", "exec", self.lab["netns"], str(tool("pulumi")), *args]

    def run(self, *args: str, timeout: float = 300, **env: str) -> subprocess.CompletedProcess:
        p = subprocess.run(self.argv(*args), cwd=self.dir, env={**self.env, **env}, capture_output=True,
                           text=True, timeout=timeout, stdin=subprocess.DEVNULL)
        self.lab["outputs"].append(p.stdout + p.stderr)
        return p

    def start(self, *args: str, **env: str) -> subprocess.Popen:
        return subprocess.Popen(self.argv(*args), cwd=self.dir, env={**self.env, **env}, stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, text=True, stdin=subprocess.DEVNULL)

    def up(self, **env: str) -> subprocess.CompletedProcess:
        return self.run("up", "--yes", "--skip-preview", "--non-interactive", "--stack", STACK, **env)

    def start_up(self, **env: str) -> subprocess.Popen:
        return self.start("up", "--yes", "--skip-preview", "--non-interactive", "--stack", STACK, **env)

    def export(self) -> dict:
        p = self.run("stack", "export", "--stack", STACK)
        assert p.returncode == 0, p.stdout + p.stderr
        return json.loads(p.stdout)


def finish(p: subprocess.Popen, lab: dict, timeout: float = 300) -> tuple[int, str]:
    out, _ = p.communicate(timeout=timeout)
    lab["outputs"].append(out)
    return p.returncode, out


def naps(state: dict) -> dict[str, dict]:
    """The Nap resources of an exported deployment, by name, after checking it is sound."""
    dep = state["deployment"]
    assert state["version"] >= 3
    assert not dep.get("pending_operations"), f"pending operations left: {dep['pending_operations']}"
    urns = [r["urn"] for r in dep["resources"]]
    assert len(urns) == len(set(urns)), "a resource is in the state twice"
    types = [r["type"] for r in dep["resources"]]
    assert types.count("pulumi:pulumi:Stack") == 1, types
    return {r["urn"].rsplit("::", 1)[1]: r for r in dep["resources"] if r["type"] == "pulumi-python:dynamic:Resource"}


def rounds(state: dict) -> set[str]:
    return {r["outputs"]["round"] for r in naps(state).values()}


def wait_for(what: str, fn, timeout: float = 60.0, every: float = 0.2):
    deadline = time.monotonic() + timeout
    while True:
        got = fn()
        if got:
            return got
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(every)


def locks(lab: dict) -> list[str]:
    return objectstore.list_keys(lab["name"], LOCKS)


# --------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    try:
        for t in ("weed", "pulumi", "pulumi-language-python", "pulumi-resource-pulumi-python"):
            tool(t)
    except ToolMissing as e:
        pytest.fail(str(e))
    name = "s3" + "".join(random.choices(string.ascii_lowercase + string.digits, k=5))
    ns = f"{name}-mgmt"
    st = LabState.load(name)
    st.add_resource("netns", ns, component="test")  # recorded before it exists
    root = tmp_path_factory.mktemp("shared-backend")
    passphrase = root / "passphrase"
    passphrase.write_text("".join(random.choices(string.ascii_letters + string.digits, k=32)))
    passphrase.chmod(0o600)
    pid = None
    try:
        subprocess.run(["ip", "netns", "add", ns], check=True)
        subprocess.run(["ip", "-n", ns, "link", "set", "lo", "up"], check=True)
        info = objectstore.start(name, progress=print)
        pid = info["pid"]
        print(f"\n[figures] object store start to ready (bucket made): {info['seconds']:.1f}s, "
              f"PSS {objectstore.pss_kib(pid) / 1024:.1f} MiB")
        yield {"name": name, "netns": ns, "info": info, "root": root, "passphrase": passphrase, "outputs": []}
    finally:
        r = dcops("lab", "down", "--name", name)
        subprocess.run(["ip", "netns", "del", ns], capture_output=True)
        assert r.returncode == 0, f"lab down failed:\n{r.stdout}\n{r.stderr}"
        assert pid is None or not pid_alive(pid), "the object store outlived `dcops lab down`"
        assert not lab_dir(name).exists()
        assert not Path("/run/netns", ns).exists()


@pytest.fixture(scope="module")
def team(lab):
    """Engineers A and B; the stack made by A in the bucket, its config file shared as in a repository."""
    a, b = Engineer(lab, lab["root"], "a"), Engineer(lab, lab["root"], "b")
    p = a.run("stack", "init", STACK, "--secrets-provider", "passphrase", "--non-interactive")
    assert p.returncode == 0, p.stdout + p.stderr
    shutil.copy(a.dir / f"Pulumi.{STACK}.yaml", b.dir / f"Pulumi.{STACK}.yaml")
    keys = objectstore.list_keys(lab["name"], ".pulumi/")
    assert any(k.endswith(f"/{STACK}.json") and "/stacks/sharedlock/" in k for k in keys), keys
    return a, b


# --------------------------------------------------------------------------- tests


def test_store_answers_only_to_the_lab_keys(lab):
    name = lab["name"]
    cred = objectstore.credentials_path(name)
    assert stat.S_IMODE(cred.stat().st_mode) == 0o600
    assert stat.S_IMODE((objectstore.store_dir(name) / "s3.json").stat().st_mode) == 0o600
    ok = objectstore.in_mgmt(name, objectstore.s3_request, name, "HEAD", f"/{objectstore.BUCKET}")
    assert ok.status_code == 200
    access, _ = objectstore.read_credentials(name)
    bad = objectstore.in_mgmt(name, objectstore.s3_request, name, "GET", f"/{objectstore.BUCKET}",
                              {"list-type": "2"}, keys=(access, "not-the-secret"))
    assert bad.status_code == 403, bad.text[:300]

    def anonymous():
        import requests
        return requests.get(f"{objectstore.endpoint()}/{objectstore.BUCKET}?list-type=2", timeout=10,
                            verify=str(objectstore.ca_path(name)))

    anon = objectstore.in_mgmt(name, anonymous)
    assert anon.status_code == 403, anon.text[:300]
    # Everything listens on the namespace's loopback, and nothing of it in the machine's namespace.
    pid = lab["info"]["pid"]
    inside = subprocess.run(["ip", "netns", "exec", lab["netns"], "ss", "-Hltnp"], capture_output=True,
                            text=True, check=True).stdout
    mine = [ln.split()[3] for ln in inside.splitlines() if f"pid={pid}," in ln]
    assert f"{objectstore.HOST}:{objectstore.S3_PORT}" in mine, inside
    assert all(a.startswith("127.0.0.1:") for a in mine), mine
    outside = subprocess.run(["ss", "-Hltnp"], capture_output=True, text=True, check=True).stdout
    assert f"pid={pid}," not in outside


def test_second_up_gets_the_lock_error_while_the_first_runs(lab, team):
    a, b = team
    first = a.start_up(NAP_SECONDS="6", NAP_ROUND="1")
    held = wait_for("engineer A's lock in the bucket", lambda: locks(lab), timeout=90)
    assert len(held) == 1 and held[0].startswith(f"{LOCKS}organization/sharedlock/{STACK}/"), held
    t0 = time.monotonic()
    second = b.up(NAP_SECONDS="0", NAP_ROUND="2")
    assert first.poll() is None, "A's update ended before B tried: the two did not overlap"
    out = second.stdout + second.stderr
    assert second.returncode != 0, f"B's `pulumi up` succeeded while A held the lock:\n{out}"
    assert LOCKED.search(out), f"B failed, but not with Pulumi's lock error:\n{out}"
    print(f"\n[figures] B refused after {time.monotonic() - t0:.1f}s: {LOCKED.search(out).group(0)}")
    code, out_a = finish(first, lab)
    assert code == 0, f"A's update failed:\n{out_a}"
    assert locks(lab) == [], "A's lock is still in the bucket after its update ended"
    state = b.export()
    assert set(naps(state)) == {f"nap-{i}" for i in range(NAPS)}
    assert rounds(state) == {"1"}, "B's refused update changed the state"
    hist = json.loads(b.run("stack", "history", "--stack", STACK, "--json").stdout)
    assert [h["result"] for h in hist] == ["succeeded"], hist
    # Once A is done, B's update goes through and A sees it.
    again = b.up(NAP_SECONDS="0", NAP_ROUND="2")
    assert again.returncode == 0, again.stdout + again.stderr
    assert rounds(a.export()) == {"2"}


def test_two_updates_started_at_once_never_both_run(lab, team):
    a, b = team
    before = rounds(a.export())
    results = {}
    procs = {"a": a.start_up(NAP_SECONDS="4", NAP_ROUND="3a"), "b": b.start_up(NAP_SECONDS="4", NAP_ROUND="3b")}
    for who, p in procs.items():
        results[who] = finish(p, lab)
    ok = [who for who, (code, _) in results.items() if code == 0]
    print(f"\n[figures] two updates at once: succeeded {ok or 'none'}; "
          f"refused {[w for w in results if w not in ok]}")
    assert len(ok) <= 1, "both updates ran on the same stack at once"
    for who, (code, out) in results.items():
        if code != 0:
            assert LOCKED.search(out), f"{who}'s update failed, but not with Pulumi's lock error:\n{out}"
    assert locks(lab) == []
    state = a.export()
    assert set(naps(state)) == {f"nap-{i}" for i in range(NAPS)}
    want = {"3" + ok[0]} if ok else before
    assert rounds(state) == want
    # Whatever happened, the next update works and the state stays whole.
    p = a.up(NAP_SECONDS="0", NAP_ROUND="4")
    assert p.returncode == 0, p.stdout + p.stderr
    assert rounds(b.export()) == {"4"}


def test_wrong_keys_are_refused_by_pulumi(lab, team, tmp_path):
    a, _ = team
    bad = tmp_path / "credentials"
    access, _ = objectstore.read_credentials(lab["name"])
    bad.write_text(f"[default]\naws_access_key_id = {access}\naws_secret_access_key = wrong\n")
    bad.chmod(0o600)
    p = a.run("stack", "ls", "--json", AWS_SHARED_CREDENTIALS_FILE=str(bad))
    assert p.returncode != 0, p.stdout
    assert re.search(r"403|AccessDenied|SignatureDoesNotMatch", p.stdout + p.stderr), p.stdout + p.stderr


def test_up_time_file_backend_vs_s3(lab, tmp_path):
    """The tiny program (3 resources, no sleep) on a fresh stack: file backend vs the S3 bucket."""
    figures = {}
    for kind in ("file", "s3"):
        backend = None
        if kind == "file":
            state = tmp_path / "state"
            state.mkdir()
            backend = {"PULUMI_BACKEND_URL": f"file://{state}"}
        e = Engineer(lab, tmp_path, f"bench-{kind}", backend)
        stack = f"bench{kind}"
        p = e.run("stack", "init", stack, "--secrets-provider", "passphrase", "--non-interactive")
        assert p.returncode == 0, p.stdout + p.stderr
        times = []
        for rnd in ("1", "1", "2"):  # create, no change, update
            t0 = time.monotonic()
            p = e.run("up", "--yes", "--skip-preview", "--non-interactive", "--stack", stack, NAP_ROUND=rnd)
            times.append(time.monotonic() - t0)
            assert p.returncode == 0, p.stdout + p.stderr
        figures[kind] = times
    print("\n[figures] pulumi up of 3 resources, seconds (create / no change / update): "
          + "; ".join(f"{k} backend " + " / ".join(f"{t:.1f}" for t in v) for k, v in figures.items()))
    pss = objectstore.pss_kib(lab["info"]["pid"])
    print(f"[figures] object store PSS after the tests' updates: {pss / 1024:.1f} MiB")


def test_secret_never_in_logs_or_outputs(lab):
    """Runs last (file order): every pulumi output collected above and the server's log."""
    _, secret = objectstore.read_credentials(lab["name"])
    assert lab["outputs"], "no pulumi output was collected"
    for out in lab["outputs"]:
        assert secret not in out
    logs = objectstore.store_dir(lab["name"]) / "logs"
    for f in logs.iterdir():
        if f.is_file():
            assert secret not in f.read_text(errors="replace"), f"the S3 secret is in {f}"
