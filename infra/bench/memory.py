"""Case ``memory``: what the lab costs in memory, per WAN site and per Kubernetes cluster.

- WAN hosts: for each ``--sites`` N, fresh hosts are started and the machine's used memory
  before and after is compared (``MemTotal - MemAvailable``): MiB per host; and the
  proportional set size (PSS) of one site host's own processes (median of 20 hosts).
- Control planes: ``dcops lab up --no-hosts`` of the lab province (a primary and a DR
  cluster); the PSS of every process it recorded (etcd, API server, controller manager,
  scheduler, kwok), per cluster.

No baseline run: the figures are sizes. Samples are one per site count (hosts) and
``repeat`` starts (control planes).
"""

from __future__ import annotations

import subprocess
from pathlib import Path

from ..lab.hosts import process_pss
from ..lab.state import LabState
from ..paths import REPO
from ..validate import load_province
from . import BenchOptions, labhosts
from .core import CaseResult, Measure, dcops_argv
from .wan import BASE_PROVINCE


def run(opts: BenchOptions, base: Path = BASE_PROVINCE, workdir: Path | None = None) -> CaseResult:
    r = CaseResult("memory", "Lab memory")
    name = f"{opts.name}m"
    wd = workdir or labhosts.workdir(name, opts.progress)
    model0 = load_province(base)
    pss = []
    for n in opts.sites:
        model, _ = labhosts.province_of(model0, n, wd)
        opts.progress(f"memory: starting {n} sites + gateway")
        try:
            up = labhosts.start(model, name, opts.progress)
        finally:
            if not opts.keep:
                labhosts.stop(name)
        opts.progress(f"memory N={n}: {up['memory_per_host_mib']} MiB per host, site host PSS {up['host_pss_mib']} MiB")
        pss.append(up["host_pss_mib"])
        r.add(Measure(f"hosts.{n}", "machine memory per WAN host (used before/after)", [up["memory_per_host_mib"]],
                      unit="MiB", n=n))
    r.add(Measure("host.pss", "one site host's processes (PSS, median of 20 hosts)", pss, unit="MiB",
                  detail=f"one sample per N in {','.join(map(str, opts.sites))}"))

    clusters = len(model0.datacenter.clusters)
    per_cluster: list[float] = []
    for i in range(opts.repeat):
        opts.progress(f"memory: control planes of {clusters} clusters, start {i + 1}/{opts.repeat}")
        try:
            p = subprocess.run(dcops_argv("lab", "up", "--no-hosts", "--name", name, "--province", str(base)),
                               capture_output=True, text=True, cwd=REPO)
            if p.returncode != 0:
                raise RuntimeError(f"dcops lab up --no-hosts failed (exit {p.returncode}): {p.stderr[-1000:]}")
            procs = LabState.load(name).alive()
            total = sum(process_pss(x["pid"]) for x in procs) / 2**20
            per_cluster.append(total / clusters)
            opts.progress(f"memory: {len(procs)} control-plane processes, {total:.0f} MiB PSS")
        finally:
            subprocess.run(dcops_argv("lab", "down", "--name", name), capture_output=True, text=True, cwd=REPO)
    r.add(Measure("cp.cluster", "Kubernetes control plane per cluster (etcd, API server, controllers, scheduler, kwok; PSS)",
                  per_cluster, unit="MiB"))
    n = opts.max_sites
    big = r.get(f"hosts.{n}")
    if big and per_cluster:
        total = big.median * (n + 1) + per_cluster[0] * clusters
        r.notes.append(f"a lab of {n} sites and {clusters} clusters needs about {total / 1024:.1f} GiB")
    return r
