"""``dcops bench --cases provision``: the Pulumi path against ``kubectl apply --server-side``.

What is timed, each ``repeat`` times, on one lab (``<name>p``: the province's control planes
only, no WAN hosts), for the province of one stack config (default: the full province,
``stacks/Pulumi.thanhhoa.yaml``):

- **kubectl** (the baseline): the objects :mod:`infra.render.k8s` renders, written as one
  multi-document YAML per cluster, applied with ``kubectl apply --server-side
  --field-manager=dcops --force-conflicts`` (the provider's field manager and forced
  conflicts), every cluster at once; the same apply again (no change); ``kubectl delete`` of
  the same files (kubectl waits until the objects are gone). The time until every Deployment
  is Available after the first apply (``kubectl wait``) is kept beside it, since ``pulumi up``
  waits for that too.
- **pulumi**: ``pulumi up`` from an empty stack, a no-change ``pulumi up`` and ``pulumi
  preview`` (``--expect-no-changes``: a change fails the run), ``pulumi destroy``.

Fairness checks (untimed): after each path the set of objects labelled
``app.kubernetes.io/managed-by=dcops`` read back through the API equals the rendered set (same
kinds and names on the same clusters), every one is owned by field manager ``dcops`` (Apply),
the no-change runs change no object (resourceVersions equal), and after each delete/destroy
every object and namespace of ours is gone before the next step starts.

Profile (the notes under the table): Pulumi's own event log (``pulumi --event-log``, a debug
flag: ``PULUMI_DEBUG_COMMANDS=true``; when
each resource's step began and ended, in whole seconds) of every pulumi step says how much of
the wall time goes before the first Kubernetes step (engine, language host, the program, the
provider plugin starting), to the steps (the pulumi-kubernetes provider's API calls and its await
logic), and after the last; the CPU time of each
step's processes (pulumi with its plugins and program, or kubectl) is in the table's details,
since it moves much less than wall time with the machine's load; one extra up, no-change up,
preview and destroy **as Pulumi runs untuned** (:data:`UNTUNED`: the state written after every
step, Pulumi's automatic debug log, the SDK's whole stack traces and debug messages) shows what
dcops's settings (infra/pulumi_env.py, infra/sdk_tuning.py) save, in the same run.

``run(opts)`` is the full province; ``run(opts, stack_config=REPO/"stacks/Pulumi.lab.yaml")``
the small lab province (the test does that).
"""

from __future__ import annotations

import json
import os
import re
import statistics
import subprocess
import time
from collections import Counter
from pathlib import Path
from typing import Callable

import yaml

from .. import pulumi_env
from ..paths import REPO, lab_dir, tool
from ..render.k8s import object_key, render_province
from ..validate import load_province
from . import BenchOptions
from .core import CaseResult, Measure, Target, dcops_argv

FULL_CONFIG = REPO / "stacks" / "Pulumi.thanhhoa.yaml"
LAB_CONFIG = REPO / "stacks" / "Pulumi.lab.yaml"
MANAGED = "app.kubernetes.io/managed-by=dcops"
FIELD_MANAGER = "dcops"  # infra.k8s.FIELD_MANAGER (the provider applies as it)
STEP_TIMEOUT = 1800.0    # one pulumi/kubectl step on a loaded machine
GONE_TIMEOUT = 300.0     # namespaces finalized after a delete/destroy


# What dcops turns off, turned back on: Pulumi as it comes (the "untuned" rows).
UNTUNED = {"PULUMI_SKIP_CHECKPOINTS": "false", "DCOPS_PULUMI_LOGS": "1", "DCOPS_PULUMI_SDK_TUNING": "0"}
UNTUNED_STEPS = (("up", "up", "pulumi up, from empty"), ("again", "up", "pulumi up, no change"),
                 ("preview", "preview", "pulumi preview, no change"), ("destroy", "destroy", "pulumi destroy"))


class BenchFailed(RuntimeError):
    """A step of the case failed; the message says which and shows the tail of its output."""


# --------------------------------------------------------------------------- helpers


def province_of(stack_config: Path) -> Path:
    """The province file a stack config names (``dcops:province``, relative to the repository)."""
    doc = yaml.safe_load(Path(stack_config).read_text()) or {}
    p = (doc.get("config") or {}).get("dcops:province")
    if not p:
        raise BenchFailed(f"{stack_config}: no dcops:province in its config")
    p = Path(p)
    return p if p.is_absolute() else REPO / p


def _dcops(*args: str, timeout: float = 900) -> subprocess.CompletedProcess:
    return subprocess.run(dcops_argv(*args), cwd=REPO,
                          capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL)


def _children_cpu() -> float:
    """CPU seconds (user + system) of every child process waited for so far, with their own children
    (pulumi: its language host, the program and the provider; kubectl: itself)."""
    import resource

    ru = resource.getrusage(resource.RUSAGE_CHILDREN)
    return ru.ru_utime + ru.ru_stime


def _tail(text: str, n: int = 30) -> str:
    return "\n".join(text.strip().splitlines()[-n:])


class Reader:
    """Lists our objects (label managed-by=dcops) of one lab cluster through its API."""

    def __init__(self, lab: str, cluster: str):
        from ..lab import controlplane as cp

        self.cluster = cluster
        self.api = cp.Api.for_cluster(lab, cluster)
        self.api.timeout = 60.0
        self._plural: dict[tuple[str, str], str] = {}

    def _collection(self, api_version: str, kind: str) -> str:
        base = "/api/v1" if api_version == "v1" else f"/apis/{api_version}"
        if (api_version, kind) not in self._plural:
            for r in self.api.get(base)["resources"]:
                if "/" not in r["name"]:
                    self._plural[(api_version, r["kind"])] = r["name"]
        return f"{base}/{self._plural[(api_version, kind)]}"

    def objects(self, kinds: set[tuple[str, str]], terminating: bool = False) -> dict[str, dict]:
        """object_key -> live object, for every object of these kinds labelled as ours."""
        found: dict[str, dict] = {}
        for api_version, kind in sorted(kinds):
            for o in self.api.get(f"{self._collection(api_version, kind)}?labelSelector={MANAGED}")["items"]:
                if o["metadata"].get("deletionTimestamp") and not terminating:
                    continue
                found[object_key({"kind": kind, "metadata": o["metadata"]})] = o
        return found

    def namespaces(self, names: set[str]) -> set[str]:
        """Which of these namespaces still exist (terminating ones included)."""
        items = self.api.get("/api/v1/namespaces")["items"]
        return {n["metadata"]["name"] for n in items} & names


def _owned_by_us(o: dict) -> bool:
    return any(m.get("manager") == FIELD_MANAGER and m.get("operation") == "Apply"
               for m in o["metadata"].get("managedFields") or [])


def _resources_summary(output: str) -> str:
    """``Resources:`` block of pulumi's output, one line: ``+ 140 created, 5 unchanged``."""
    m = re.search(r"(?ms)^Resources:\s*\n(.*?)(?:\n\s*\n|\nDuration|\Z)", output)
    if not m:
        return ""
    return ", ".join(" ".join(ln.split()) for ln in m.group(1).splitlines() if ln.strip())


# --------------------------------------------------------------------------- the case


class _Case:
    def __init__(self, opts: BenchOptions, stack_config: Path):
        self.opts = opts
        self.say = opts.progress
        self.stack_config = Path(stack_config)
        self.province = province_of(self.stack_config)
        self.lab = f"{opts.name}p"
        model = load_province(self.province)
        self.rendered = render_province(model)
        self.want = {cid: {object_key(o): o for o in objs.objects()} for cid, objs in self.rendered.items()}
        self.kinds = {(o["apiVersion"], o["kind"]) for per in self.want.values() for o in per.values()}
        self.our_namespaces = {cid: {o["metadata"]["name"] for o in per.values() if o["kind"] == "Namespace"}
                               for cid, per in self.want.items()}
        self.n_objects = sum(len(v) for v in self.want.values())
        self.readers: dict[str, Reader] = {}
        self.files: dict[str, Path] = {}
        self.problems: list[str] = []
        self.traces: dict[str, list[dict]] = {}
        self.summaries: dict[str, str] = {}

    # ------------------------------------------------------------------ lab

    def lab_up(self) -> float:
        from ..lab.state import LabState

        if lab_dir(self.lab).exists():
            self.say(f"lab '{self.lab}' exists (left by an earlier run): taking it down first")
            self.lab_down()
        self.say(f"lab '{self.lab}': starting the control planes of {self.province.relative_to(REPO)} (no WAN hosts)")
        t0 = time.monotonic()
        r = _dcops("lab", "up", "--name", self.lab, "--no-hosts", "--province", str(self.province))
        took = time.monotonic() - t0
        if r.returncode != 0 or not LabState.load(self.lab).alive():
            raise BenchFailed(f"`dcops lab up --name {self.lab}` exited {r.returncode}:\n{_tail(r.stdout + r.stderr)}")
        self.say(f"lab '{self.lab}': up in {took:.0f} s")
        self.readers = {cid: Reader(self.lab, cid) for cid in self.want}
        return took

    def lab_down(self) -> None:
        r = _dcops("lab", "down", "--name", self.lab)
        if r.returncode != 0:
            self.say(f"warning: `dcops lab down --name {self.lab}` exited {r.returncode}: {_tail(r.stdout + r.stderr, 8)}")

    def kubeconfig(self, cid: str) -> Path:
        from ..lab import controlplane as cp

        return cp.kubeconfig_path(self.lab, cid)

    # ------------------------------------------------------------------ checks

    def snapshot(self, terminating: bool = False) -> dict[str, dict[str, dict]]:
        return {cid: rd.objects(self.kinds, terminating) for cid, rd in self.readers.items()}

    def check_objects(self, path: str) -> dict[str, dict[str, dict]]:
        """After ``path`` made everything: exactly the rendered objects exist, owned by field manager dcops."""
        live = self.snapshot()
        for cid, want in self.want.items():
            got = live[cid]
            missing, extra = sorted(set(want) - set(got)), sorted(set(got) - set(want))
            if missing or extra:
                self.problems.append(f"after {path}: {cid}: missing {missing[:8]}, unexpected {extra[:8]}")
            foreign = sorted(k for k, o in got.items() if not _owned_by_us(o))
            if foreign:
                self.problems.append(f"after {path}: {cid}: not applied by field manager '{FIELD_MANAGER}': {foreign[:8]}")
        return live

    def unchanged(self, before: dict[str, dict[str, dict]], path: str) -> int:
        """Objects a no-change run changed since ``before`` (it should change none): the spec's generation
        where the object has one (a controller writing its status, as the API server does for a
        ValidatingAdmissionPolicy after creation, is not the run's doing), else the resourceVersion."""
        after = self.snapshot()

        def mark(o: dict) -> tuple:
            md = o.get("metadata", {})
            return ("generation", md["generation"]) if "generation" in md else ("rv", md.get("resourceVersion"))

        moved = [f"{cid}: {k}" for cid in before for k, o in before[cid].items()
                 if mark(after[cid].get(k, {})) != mark(o)]
        if moved:
            self.say(f"note: {len(moved)} object(s) changed during the no-change {path}: {moved[:5]}")
        return len(moved)

    def wait_gone(self, path: str) -> float:
        """Until none of our objects or namespaces is left (terminating included). Returns the wait."""
        t0 = time.monotonic()
        while True:
            left = {cid: sorted(rd.objects(self.kinds, terminating=True)) + sorted(rd.namespaces(self.our_namespaces[cid]))
                    for cid, rd in self.readers.items()}
            if not any(left.values()):
                return time.monotonic() - t0
            if time.monotonic() - t0 > GONE_TIMEOUT:
                raise BenchFailed(f"after {path}: still there after {GONE_TIMEOUT:.0f} s: "
                                  f"{ {c: v[:6] for c, v in left.items() if v} }")
            time.sleep(0.5)

    # ------------------------------------------------------------------ kubectl

    def write_files(self) -> None:
        d = lab_dir(self.lab) / "bench-provision"
        d.mkdir(parents=True, exist_ok=True, mode=0o700)
        for cid, objs in self.rendered.items():
            p = d / f"{cid}.yaml"
            p.write_text(yaml.safe_dump_all(objs.objects(), allow_unicode=True, sort_keys=False))
            self.files[cid] = p
        self.cache = d / "kubectl-cache"

    def kubectl(self, key: str, what: str, args_of: Callable[[str], list[str]]) -> float:
        """Run kubectl on every cluster at once; the wall time until the last one finished (CPU kept under ``key``)."""
        exe = str(tool("kubectl"))
        env = {k: v for k, v in os.environ.items() if k != "KUBECONFIG"}
        c0 = _children_cpu()
        t0 = time.monotonic()
        procs = {cid: subprocess.Popen([exe, "--kubeconfig", str(self.kubeconfig(cid)), "--cache-dir", str(self.cache),
                                        *args_of(cid)], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                       stdin=subprocess.DEVNULL, text=True)
                 for cid in self.files}
        outs = {cid: p.communicate(timeout=STEP_TIMEOUT)[0] for cid, p in procs.items()}
        took = time.monotonic() - t0
        self.cpu.setdefault(key, []).append(_children_cpu() - c0)
        bad = {cid: p.returncode for cid, p in procs.items() if p.returncode != 0}
        if bad:
            raise BenchFailed(f"kubectl {what} failed on {', '.join(f'{c} (exit {rc})' for c, rc in bad.items())}:\n"
                              + "\n".join(f"--- {c}\n{_tail(outs[c], 15)}" for c in bad))
        return took

    def wait_workloads_ready(self, timeout: float = 600.0) -> float:
        """Until every managed Deployment and StatefulSet of every cluster has all its replicas ready
        (kubectl wait cannot say that for StatefulSets, nor for a cluster without Deployments) and every
        ValidatingAdmissionPolicy has its status (written once, asynchronously, after its creation)."""
        exe = str(tool("kubectl"))
        env = {k: v for k, v in os.environ.items() if k != "KUBECONFIG"}
        c0 = _children_cpu()
        t0 = time.monotonic()
        pending: list[str] = []
        while time.monotonic() - t0 < timeout:
            pending = []
            for cid in self.files:
                p = subprocess.run([exe, "--kubeconfig", str(self.kubeconfig(cid)), "--cache-dir", str(self.cache), "get",
                                    "deployment,statefulset,validatingadmissionpolicy", "--all-namespaces", "-l", MANAGED,
                                    "-o", "json"],
                                   env=env, capture_output=True, text=True, stdin=subprocess.DEVNULL, timeout=120)
                if p.returncode != 0:
                    pending.append(f"{cid}: kubectl get exited {p.returncode}")
                    continue
                for o in json.loads(p.stdout).get("items") or []:
                    if o["kind"] == "ValidatingAdmissionPolicy":  # the API server type-checks it, then writes its status
                        if (o.get("status") or {}).get("observedGeneration") != o["metadata"].get("generation"):
                            pending.append(f"{cid}/ValidatingAdmissionPolicy/{o['metadata']['name']} not type-checked yet")
                        continue
                    want = (o.get("spec") or {}).get("replicas", 1)
                    st = o.get("status") or {}
                    settled = (st.get("observedGeneration") == o["metadata"].get("generation")
                               and (st.get("readyReplicas") or 0) >= want and (st.get("availableReplicas") or 0) >= want
                               and (st.get("updatedReplicas") or 0) >= want
                               and (o["kind"] != "StatefulSet" or st.get("currentRevision") == st.get("updateRevision")))
                    if not settled:  # the controllers write a workload's status in several steps
                        pending.append(f"{cid}/{o['kind']}/{o['metadata']['namespace']}/{o['metadata']['name']} "
                                       f"{st.get('readyReplicas') or 0}/{want}")
            if not pending:
                break
            time.sleep(0.5)
        took = time.monotonic() - t0
        self.cpu.setdefault("kubectl.wait", []).append(_children_cpu() - c0)
        if pending:
            raise BenchFailed(f"workloads not ready after {timeout:.0f} s: {', '.join(pending[:8])}")
        return took

    def apply_args(self, cid: str) -> list[str]:
        return ["apply", "--server-side", f"--field-manager={FIELD_MANAGER}", "--force-conflicts", "-f",
                str(self.files[cid])]

    def kubectl_cycle(self, i: int) -> dict[str, float]:
        n = self.opts.repeat
        self.say(f"kubectl [{i}/{n}]: apply --server-side from empty ({self.n_objects} objects)")
        t = {"apply": self.kubectl("kubectl.apply", "apply (from empty)", self.apply_args)}
        self.say(f"kubectl [{i}/{n}]: applied in {t['apply']:.1f} s; waiting for every Deployment to be Available")
        t["ready"] = t["apply"] + self.wait_workloads_ready()
        before = self.check_objects("kubectl apply")
        self.say(f"kubectl [{i}/{n}]: Available after {t['ready']:.1f} s; apply again (no change)")
        t["again"] = self.kubectl("kubectl.again", "apply (no change)", self.apply_args)
        self.moved["kubectl"] += self.unchanged(before, "kubectl apply")
        self.say(f"kubectl [{i}/{n}]: no-change apply {t['again']:.1f} s; delete")
        t["delete"] = self.kubectl("kubectl.delete", "delete", lambda cid: ["delete", "--wait=true", "--ignore-not-found",
                                                          "--timeout=600s", "-f", str(self.files[cid])])
        extra = self.wait_gone("kubectl delete")
        self.say(f"kubectl [{i}/{n}]: deleted in {t['delete']:.1f} s (+{extra:.1f} s until every namespace was gone)")
        return t

    # ------------------------------------------------------------------ pulumi

    def prepare_stack(self) -> None:
        """The lab's stack ``lab``: `dcops lab up --province` wrote its config (this province and the lab's
        environment; the stack config's own environment is the real province's, not the lab's)."""
        pulumi_env.ensure_stack(self.lab, province=self.province)

    def pulumi(self, key: str, action: str, *extra: str, trace: str | None = None,
               env: dict[str, str] | None = None) -> tuple[float, str]:
        """``pulumi ACTION`` of the lab stack; wall time and output (CPU kept under ``key``)."""
        env_extra: dict[str, str] = dict(env or {})
        tfile = None
        if trace:
            tfile = lab_dir(self.lab) / "bench-provision" / f"events-{trace}.jsonl"
            tfile.unlink(missing_ok=True)
            extra = (*extra, "--event-log", str(tfile))
            env_extra["PULUMI_DEBUG_COMMANDS"] = "true"  # --event-log is one of Pulumi's debug flags
        args = [*pulumi_env.action_args(action, extra=extra), *pulumi_env.stack_args(self.lab)]
        lines: list[str] = []
        w0 = time.time()
        c0 = _children_cpu()
        t0 = time.monotonic()
        cp_ = pulumi_env.pulumi(args, self.lab, on_line=lines.append, check=False, env_extra=env_extra,
                                timeout=STEP_TIMEOUT)
        took = time.monotonic() - t0
        self.cpu.setdefault(key, []).append(_children_cpu() - c0)
        out = "\n".join(lines)
        if cp_.returncode != 0:
            raise BenchFailed(f"`pulumi {' '.join(args[:len(args) - 4])}` exited {cp_.returncode}:\n{_tail(out)}")
        if tfile is not None and trace:
            self.traces.setdefault(trace, [])
            if tfile.exists():
                self.traces[trace].append({"start": w0, "wall": took, "events": event_log_steps(tfile)})
        self.summaries[key] = _resources_summary(out)
        return took, out

    def pulumi_cycle(self, i: int) -> dict[str, float]:
        n = self.opts.repeat
        self.say(f"pulumi [{i}/{n}]: up from empty")
        t = {"up": self.pulumi("pulumi.up", "up", trace="up")[0]}
        before = self.check_objects("pulumi up")
        if not self.checkpoint:
            self.checkpoint = checkpoint_stats(self.lab)
        self.say(f"pulumi [{i}/{n}]: up {t['up']:.1f} s; up again (no change)")
        t["again"] = self.pulumi("pulumi.again", "up", "--expect-no-changes", trace="again")[0]
        self.say(f"pulumi [{i}/{n}]: no-change up {t['again']:.1f} s; preview (no change)")
        t["preview"] = self.pulumi("pulumi.preview", "preview", "--expect-no-changes", trace="preview")[0]
        self.moved["pulumi"] += self.unchanged(before, "pulumi up/preview")
        self.say(f"pulumi [{i}/{n}]: preview {t['preview']:.1f} s; destroy")
        t["destroy"] = self.pulumi("pulumi.destroy", "destroy", trace="destroy")[0]
        extra = self.wait_gone("pulumi destroy")
        self.say(f"pulumi [{i}/{n}]: destroyed in {t['destroy']:.1f} s (+{extra:.1f} s until every namespace was gone)")
        return t

    def untuned_probe(self) -> dict[str, float]:
        """One up, no-change up, preview and destroy as Pulumi runs untuned (:data:`UNTUNED`): what dcops's
        settings save, measured in the same run. Not how dcops runs."""
        t: dict[str, float] = {}
        for key, action, what in UNTUNED_STEPS:
            self.say(f"pulumi (untuned): {what}")
            extra = ("--expect-no-changes",) if key in ("again", "preview") else ()
            t[key] = self.pulumi(f"pulumi.{key}.untuned", action, *extra, env=UNTUNED)[0]
            if key == "up":
                self.check_objects("pulumi up (untuned)")
                self.checkpoint_untuned = checkpoint_stats(self.lab)
            self.say(f"pulumi (untuned): {what} {t[key]:.1f} s")
        self.wait_gone("pulumi destroy (untuned)")
        return t

    # ------------------------------------------------------------------ all of it

    def run(self) -> CaseResult:
        r = CaseResult(case="provision", title="Provisioning: pulumi up / preview / destroy against kubectl apply --server-side")
        self.moved = {"kubectl": 0, "pulumi": 0}
        self.loads: list[float] = []
        self.cpu: dict[str, list[float]] = {}
        self.probe: dict[str, float] = {}
        self.checkpoint: dict[str, float] = {}
        self.checkpoint_untuned: dict[str, float] = {}
        ks: list[dict[str, float]] = []
        ps: list[dict[str, float]] = []
        try:
            # A lab that does not start raises (nothing measured, nothing saved over earlier figures).
            lab_up = self.lab_up()
            try:
                self.write_files()
                self.prepare_stack()
                self.cycles(ks, ps)
            except BenchFailed as e:
                self.problems.append(str(e))
                self.say(f"FAILED: {e}")
        finally:
            if self.opts.keep:
                self.say(f"lab '{self.lab}' kept running (--keep): `dcops lab down --name {self.lab}` removes it")
            else:
                self.say(f"lab '{self.lab}': down")
                self.lab_down()
        self.fill(r, ks, ps, lab_up)
        return r

    def cycles(self, ks: list[dict[str, float]], ps: list[dict[str, float]]) -> None:
        """kubectl then pulumi, ``repeat`` times (interleaved: both see the same load), then pulumi untuned once."""
        for i in range(1, self.opts.repeat + 1):
            self.loads.append(os.getloadavg()[0])
            ks.append(self.kubectl_cycle(i))
            self.loads.append(os.getloadavg()[0])
            ps.append(self.pulumi_cycle(i))
        self.probe = self.untuned_probe()

    def fill(self, r: CaseResult, ks: list[dict], ps: list[dict], lab_up: float) -> None:
        N = self.n_objects
        per = ", ".join(f"{cid} {len(v)}" for cid, v in self.want.items())
        kinds = Counter(o["kind"] for v in self.want.values() for o in v.values())
        where = f"{self.province.relative_to(REPO)}"

        def col(rows: list[dict], key: str) -> list[float]:
            return [round(x[key], 3) for x in rows if key in x]

        def moved(path: str) -> str:
            return f"{self.moved[path]} objects changed" if self.moved[path] else ""

        both = f"{len(self.want)} clusters at once"
        # Wall time: what an operator waits for.
        r.add(Measure("provision.kubectl.apply", f"kubectl apply --server-side, from empty ({both})",
                      col(ks, "apply"), n=N))
        r.add(Measure("provision.kubectl.ready", "kubectl apply + kubectl wait until every Deployment is Available",
                      col(ks, "ready"), n=N))
        r.add(Measure("provision.kubectl.again", "kubectl apply --server-side, no change", col(ks, "again"), n=N,
                      detail=moved("kubectl")))
        r.add(Measure("provision.kubectl.delete", "kubectl delete (waits until gone)", col(ks, "delete"), n=N))
        r.add(Measure("provision.pulumi.up", "pulumi up, from empty (awaits Deployments Ready)", col(ps, "up"), n=N,
                      baseline="provision.kubectl.apply", detail=self.summaries.get("pulumi.up", "")))
        r.add(Measure("provision.pulumi.again", "pulumi up, no change", col(ps, "again"), n=N,
                      baseline="provision.kubectl.again", detail=moved("pulumi")))
        r.add(Measure("provision.pulumi.preview", "pulumi preview, no change", col(ps, "preview"), n=N,
                      baseline="provision.kubectl.again"))
        r.add(Measure("provision.pulumi.destroy", "pulumi destroy (waits until gone)", col(ps, "destroy"), n=N,
                      baseline="provision.kubectl.delete", detail=self.summaries.get("pulumi.destroy", "")))
        # CPU time of the client side (pulumi with its language host, program and provider; kubectl):
        # what it costs the machine, and much steadier than wall time when the machine is shared.
        rows = [
            ("kubectl.apply", "CPU: kubectl apply, from empty", None),
            ("kubectl.again", "CPU: kubectl apply, no change", None),
            ("kubectl.delete", "CPU: kubectl delete", None),
            ("pulumi.up", "CPU: pulumi up, from empty", "kubectl.apply"),
            ("pulumi.again", "CPU: pulumi up, no change", "kubectl.again"),
            ("pulumi.preview", "CPU: pulumi preview, no change", "kubectl.again"),
            ("pulumi.destroy", "CPU: pulumi destroy", "kubectl.delete"),
        ]
        for key, label, base in rows:
            if self.cpu.get(key):
                r.add(Measure(f"provision.cpu.{key}", label, [round(x, 3) for x in self.cpu[key]], unit="s CPU", n=N,
                              baseline=f"provision.cpu.{base}" if base else None))
        if self.probe:
            bases = {"up": "provision.pulumi.up", "again": "provision.pulumi.again",
                     "preview": "provision.pulumi.preview", "destroy": "provision.pulumi.destroy"}
            for key, _action, what in UNTUNED_STEPS:
                if key in self.probe:
                    r.add(Measure(f"provision.pulumi.{key}.untuned", f"untuned: {what} (as Pulumi comes)",
                                  [round(self.probe[key], 3)], n=N, baseline=bases[key]))
            for key, _action, what in UNTUNED_STEPS:
                if self.cpu.get(f"pulumi.{key}.untuned"):
                    r.add(Measure(f"provision.cpu.pulumi.{key}.untuned", f"CPU: untuned: {what}",
                                  [round(x, 3) for x in self.cpu[f"pulumi.{key}.untuned"]], unit="s CPU", n=N,
                                  baseline=f"provision.cpu.pulumi.{key}"))
        ok = not self.problems and len(ks) == len(ps) == self.opts.repeat
        self.targets(r, ks, ps)
        self.checks = {
            "objects": N,
            "same_objects": ok,
            "kubectl_runs": len(ks),
            "pulumi_runs": len(ps),
            "no_change_moved": dict(self.moved),
            "problems": list(self.problems),
        }
        r.notes.append(f"{N} Kubernetes objects ({per}): "
                       + ", ".join(f"{k} {v}" for k, v in kinds.most_common())
                       + f"; from {where} on {len(self.want)} lab control planes (lab up {lab_up:.0f} s, not timed).")
        if ok:
            r.notes.append(
                "Same objects both ways: after every kubectl apply and every pulumi up the objects labelled "
                f"managed-by=dcops read back through the API were exactly the {N} rendered ones (kinds, namespaces, names "
                f"per cluster), each applied by field manager '{FIELD_MANAGER}'; after every delete/destroy none of them "
                "and none of their namespaces was left before the next step.")
        else:
            r.notes.append("**FAILED**: " + " | ".join(p.replace("\n", " ")[:600] for p in self.problems))
        r.notes += self.profile_notes(ks, ps)
        r.failed = not ok
        r.checks = self.checks  # type: ignore[attr-defined]

    def targets(self, r: CaseResult, ks: list[dict], ps: list[dict]) -> None:
        """Issue 14's targets, on the medians of this run: the up from empty within 1.5x kubectl apply plus the
        readiness wait (same objects, same run); a no-change up and a no-change preview each under 10 s."""
        ready, up = [x["ready"] for x in ks if "ready" in x], [x["up"] for x in ps if "up" in x]
        if ready and up:
            ratio = statistics.median(up) / statistics.median(ready)
            r.targets.append(Target(
                f"pulumi up from empty ({self.n_objects} objects) within 1.5x kubectl apply --server-side + "
                "readiness wait", f"{ratio:.2f}x ({statistics.median(up):.1f} s vs {statistics.median(ready):.1f} s)",
                ratio <= 1.5))
        for key, what in (("again", "no-change pulumi up"), ("preview", "no-change pulumi preview")):
            xs = [x[key] for x in ps if key in x]
            if xs:
                med = statistics.median(xs)
                r.targets.append(Target(f"{what} of the province ({self.n_objects} objects) under 10 s",
                                        f"{med:.1f} s", med < 10.0))

    # ------------------------------------------------------------------ profile

    def untuned_notes(self) -> list[str]:
        """What dcops's settings save: CPU of each pulumi step, tuned (median) against untuned (one run), same run."""
        rows = []
        for key, _action, what in UNTUNED_STEPS:
            tuned, untuned = self.cpu.get(f"pulumi.{key}"), self.cpu.get(f"pulumi.{key}.untuned")
            if tuned and untuned:
                t = statistics.median(tuned)
                rows.append(f"{what} {t:.1f} s CPU against {untuned[0]:.1f} s ({_pct_less(t, untuned[0])})")
        if not rows:
            return []
        ck, old = self.checkpoint, self.checkpoint_untuned
        size = ""
        if ck.get("resources") and old.get("resources"):
            size = (f" The state of {ck['resources']:.0f} resources is {ck['bytes'] / 1024:.0f} KiB "
                    f"({ck['stackTrace'] / 1024:.0f} KiB of it stack traces; untuned {old['bytes'] / 1024:.0f} KiB, "
                    f"{old['stackTrace'] / 1024:.0f} KiB), {ck['outputs'] / 1024:.0f} KiB of it the objects as read back "
                    f"(with their managedFields) and {ck['inputs'] / 1024:.0f} KiB their inputs.")
        return [
            "CPU (the `CPU:` rows: pulumi with its language host, program and provider, or kubectl; the API servers' "
            "work is not in them) moves much less than wall time with the machine's load. dcops runs Pulumi with the "
            "state written once per command instead of before and after every step (PULUMI_SKIP_CHECKPOINTS; "
            "a killed up is recovered by refresh then up: fixed names, server-side apply), without Pulumi's "
            "automatic encrypted debug log, and with the SDK sending only the project's stack frames and no debug "
            "messages (infra/pulumi_env.py, infra/sdk_tuning.py). The `untuned:` rows (one run each, same lab, "
            "same run) are Pulumi as it comes: " + "; ".join(rows) + "." + size]

    def profile_notes(self, ks: list[dict], ps: list[dict]) -> list[str]:
        """Where the time of each pulumi step goes, from the provider's trace (medians over the runs)."""
        notes: list[str] = []
        loads = [x for x in self.loads if x == x]
        if loads:
            notes.append(f"Machine load (1-min average) at the start of each kubectl/pulumi cycle: "
                         f"{min(loads):.1f} to {max(loads):.1f} on {os.cpu_count()} cores, shared with other work: "
                         "single figures move by tens of percent with it; compare medians measured in the same run.")
        prof = {k: [profile(run) for run in runs if run["events"]] for k, runs in self.traces.items()}
        prof = {k: v for k, v in prof.items() if v}

        def med(k: str, field: str) -> float:
            return statistics.median(x[field] for x in prof[k])

        if "up" in prof:
            notes.append(
                f"Where `pulumi up` from empty goes (median of {len(prof['up'])}, Pulumi's event log, whole seconds): "
                f"{med('up', 'before'):.0f} s before the first Kubernetes step (engine, Python language host, the "
                f"program: imports, validation, rendering, registering {med('up', 'ops'):.0f} objects; the "
                f"pulumi-kubernetes plugin starting and reading its cluster), {med('up', 'span'):.0f} s of steps and "
                f"{med('up', 'after'):.0f} s after the last (outputs, final checkpoint). The steps include the "
                f"provider's await logic: the longest Deployment step (rolled out, pods made Ready by kwok) took "
                f"{med('up', 'deploy_max'):.0f} s; up to {med('up', 'conc_max'):.0f} steps were under way at once "
                f"(the engine runs `--parallel` steps at a time, 8 by default, and the Go provider serves them all).")
        for k, what in (("again", "no-change `pulumi up`"), ("preview", "no-change `pulumi preview`")):
            if k in prof:
                notes.append(
                    f"A {what} (median {statistics.median(x[k] for x in ps):.1f} s): {med(k, 'before'):.0f} s until the "
                    f"first step, {med(k, 'span'):.0f} s of {med(k, 'ops'):.0f} steps (the provider diffs each object "
                    f"against the state; with server-side apply it also asks the API server for a dry-run apply) and "
                    f"{med(k, 'after'):.0f} s after. kubectl's no-change apply sends every object to the API server too.")
        if "destroy" in prof:
            notes.append(
                f"Where `pulumi destroy` goes (median of {len(prof['destroy'])}): {med('destroy', 'before'):.0f} s before "
                f"the first delete (no program run), {med('destroy', 'span'):.0f} s of deletes (the provider waits until "
                f"each object is gone; the longest Namespace delete, finalized by the namespace controller, took "
                f"{med('destroy', 'ns_max'):.0f} s) and {med('destroy', 'after'):.0f} s after the last. The engine "
                "deletes dependents first and a namespace last; `kubectl delete -f` deletes in file order (namespaces "
                "early, their contents go with them) and waits for all at the end.")
        notes += self.untuned_notes()
        notes.append(
            "Since issue 14 Kubernetes objects go through the real pulumi-kubernetes provider (a Go plugin built by "
            "scripts/install-tools, typed resources, server-side apply as field manager dcops, its own await logic) "
            "instead of dcops's Python dynamic provider, whose host served at most 4 calls at once; the figures before "
            "the change are kept in docs/benchmarks.md under this table.")
        return notes


def _pct_less(new: float, old: float) -> str:
    return f"{100 * (1 - new / old):.0f}% less" if old > 0 else "-"


def checkpoint_stats(lab: str) -> dict[str, float]:
    """Size of the stack's checkpoint in the lab's file backend, and how much of it is what."""
    files = sorted((pulumi_env.state_dir(lab) / ".pulumi" / "stacks").glob(f"*/{pulumi_env.STACK}.json"))
    if not files:
        return {}
    raw = files[0].read_bytes()
    try:
        res = json.loads(raw)["checkpoint"]["latest"]["resources"]
    except (ValueError, KeyError, TypeError):
        return {"bytes": float(len(raw))}
    part = Counter()
    for r in res:
        for k, v in r.items():
            part[k] += len(json.dumps(v))
    return {"bytes": float(len(raw)), "resources": float(len(res)), "stackTrace": float(part["stackTrace"]),
            "inputs": float(part["inputs"]), "outputs": float(part["outputs"])}


def profile(run: dict) -> dict[str, float]:
    """Figures of one traced pulumi step: before/span/after the provider calls, API time, waits, concurrency."""
    ev = run["events"]
    start, wall = run["start"], run["wall"]
    t0 = min(e["t0"] for e in ev)
    t1 = max(e["t0"] + e["dt"] for e in ev)
    edges = sorted([(e["t0"], 1) for e in ev] + [(e["t0"] + e["dt"], -1) for e in ev])
    conc = conc_max = 0
    idle, last = 0.0, t0
    for t, d in edges:
        if conc == 0:
            idle += max(0.0, t - last)
        conc += d
        conc_max = max(conc_max, conc)
        last = t
    apis = [e["api"] for e in ev if "api" in e]
    ready = [e["ready"] for e in ev if "ready" in e]
    ns = [e.get("gone", e["dt"]) for e in ev if e["op"] == "delete" and e["kind"] == "Namespace"]
    deploys = [e["dt"] for e in ev if e["kind"] == "Deployment" and e["op"] in ("create", "update")]
    # time in a call outside its API request and waits: the API client's start (first calls only)
    client = max((max(0.0, e["dt"] - e.get("api", 0) - e.get("ready", 0) - e.get("gone", 0))
                  for e in ev if e["op"] in ("create", "update", "delete")), default=0.0)
    return {
        "wall": wall, "before": t0 - start, "span": t1 - t0, "after": max(0.0, start + wall - t1),
        "ops": float(len(ev)), "api": sum(apis), "api_med": statistics.median(apis) if apis else 0.0,
        "ready": sum(ready), "ready_max": max(ready, default=0.0), "client": client,
        "ns_gone": sum(ns), "ns_max": max(ns, default=0.0), "conc_max": float(conc_max), "idle": idle,
        "dt_max": max(e["dt"] for e in ev), "deploy_max": max(deploys, default=0.0),
    }


def event_log_steps(path: Path) -> list[dict]:
    """The Kubernetes resources' steps in a ``pulumi --event-log`` file: ``op``, ``kind``, ``t0`` and ``dt``
    (from the engine's events' timestamps, whole seconds: a step shorter than a second has dt 0)."""
    started: dict[str, tuple[float, str, str]] = {}
    steps: list[dict] = []
    for line in path.read_text().splitlines():
        try:
            e = json.loads(line)
        except ValueError:
            continue
        for key in ("resourcePreEvent", "resOutputsEvent", "resOpFailedEvent"):
            md = (e.get(key) or {}).get("metadata") or {}
            typ = str(md.get("type", ""))
            if not typ.startswith("kubernetes:"):
                continue
            urn, ts = md.get("urn"), float(e.get("timestamp") or 0)
            if key == "resourcePreEvent":
                started[urn] = (ts, str(md.get("op", "")), typ.rsplit(":", 1)[-1])
            elif urn in started:
                t0, op, kind = started.pop(urn)
                steps.append({"op": op, "kind": kind, "t0": t0, "dt": ts - t0})
    return steps


def run(opts: BenchOptions, stack_config: Path = FULL_CONFIG) -> CaseResult:
    """The provisioning case on the province of ``stack_config`` (default: the full province)."""
    tool("kubectl")
    tool("pulumi")
    tool("pulumi-language-python")
    from ..lab import controlplane as cp

    cp.check_tools()
    return _Case(opts, stack_config).run()
