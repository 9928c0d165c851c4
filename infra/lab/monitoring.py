"""The lab's monitoring: Prometheus and blackbox_exporter (Debian's packages)
inside the lab's management namespace ``<lab>-mgmt``.

``start(lab, model)`` renders the configuration from the province file
(:mod:`infra.render.prometheus`) into ``<lab dir>/monitoring/``, starts
blackbox_exporter and Prometheus with ``ip netns exec <lab>-mgmt`` (both listen
on the namespace's loopback only; Prometheus keeps data longer than the SLA
window), waits until Prometheus is ready and records both processes in the
lab's state (component ``monitoring``) so that ``dcops lab down`` ends them by
PID.  Probes go to the platforms' front ends and the sites' tunnel addresses,
which only exist inside the lab.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Callable

import yaml

from infra.model import ProvinceFile
from infra.paths import lab_dir
from infra.render import prometheus as R

from . import promrun

COMPONENT = "monitoring"
PROM_LISTEN = "127.0.0.1:9090"
BLACKBOX_LISTEN = "127.0.0.1:9115"
RETENTION = "400d"


def mon_dir(lab: str) -> Path:
    return lab_dir(lab) / "monitoring"


def running(lab: str) -> dict | None:
    """``{"url", "netns"}`` when the lab's Prometheus runs, else None."""
    from infra.lab.state import LabState, pid_alive

    st = LabState.load(lab)
    procs = [p for p in st.processes(COMPONENT) if p["name"] == "prometheus" and pid_alive(p["pid"], p.get("start_time"))]
    if not procs:
        return None
    return {"url": st.get("monitoring.prometheus_url"), "netns": st.get("monitoring.netns")}


def start(lab: str, pf: ProvinceFile, scrape_interval: str = "15s", evaluation_interval: str = "15s",
          progress: Callable[[str], None] = print) -> dict:
    from infra.lab import netexec
    from infra.lab.state import LabState

    have = running(lab)
    if have:
        progress(f"monitoring already runs in {have['netns']} ({have['url']})")
        return have
    ns = netexec.netns(lab, "mgmt")
    d = mon_dir(lab)
    d.mkdir(parents=True, exist_ok=True)
    files = R.render(pf, d, blackbox=BLACKBOX_LISTEN, scrape_interval=scrape_interval, evaluation_interval=evaluation_interval)
    st = LabState.load(lab)
    logs = d / "logs"
    logs.mkdir(exist_ok=True)

    bb_argv = [promrun.blackbox_bin(), f"--config.file={files['blackbox']}", f"--web.listen-address={BLACKBOX_LISTEN}"]
    with open(logs / "blackbox.log", "ab") as f:
        import subprocess

        bb = subprocess.Popen(promrun.netns_cmd(ns, bb_argv), stdout=f, stderr=subprocess.STDOUT, start_new_session=True)
    st.add_process(COMPONENT, "blackbox_exporter", bb.pid, ports={"http": 9115}, log=str(logs / "blackbox.log"),
                   cmd=bb_argv, netns=ns)
    prom = promrun.start_prometheus(ns, files["prometheus"], d / "data", PROM_LISTEN, logs / "prometheus.log", retention=RETENTION)
    st.add_process(COMPONENT, "prometheus", prom.pid, ports={"http": 9090}, log=str(logs / "prometheus.log"),
                   cmd=list(prom.args), netns=ns)
    url = f"http://{PROM_LISTEN}"
    st.set("monitoring.prometheus_url", url)
    st.set("monitoring.netns", ns)
    promrun.wait_ready(ns, url, prom)
    progress(f"monitoring: Prometheus {url} and blackbox_exporter {BLACKBOX_LISTEN} in {ns} "
             f"({len(pf.platforms)} front ends, {len(pf.wan.sites)} tunnel addresses probed)")
    return {"url": url, "netns": ns}


def stop(lab: str) -> None:
    """End the monitoring processes of a lab (by recorded PID)."""
    from infra.lab import controlplane as cp
    from infra.lab.state import LabState

    st = LabState.load(lab)
    cp.stop_processes(list(reversed(st.processes(COMPONENT))), progress=lambda m: None)
    for p in st.processes(COMPONENT):
        st.remove_process(p["pid"])


def wait_for_samples(lab: str, pf: ProvinceFile, timeout: float = 120.0, sites: int = 0) -> None:
    """Wait until every platform has its 1h availability and latency ratios recorded and, with
    ``sites``, every site started in the lab its 1h availability ratio (a fresh Prometheus has
    none: the SLA checks would report "series missing" until its first rule evaluation)."""
    from .netns import in_netns
    from .sla import Prom

    info = running(lab)
    if not info:
        raise RuntimeError(f"monitoring is not running in lab {lab}")
    want = [(f'count(count_over_time({R.rec("platform", sli, "1h")}[1h]))', len(pf.platforms), f"platform {sli}")
            for sli in ("availability", "latency")]
    if sites:
        want.append((f'count(count_over_time({R.rec("site", "availability", "1h")}[1h]))', sites, "site availability"))

    def short() -> list[str]:
        out = []
        for q, need, what in want:
            rows = Prom(info["url"]).vector(q)
            have = int(float(rows[0]["value"][1])) if rows else 0
            if have < need:
                out.append(f"{what} {have}/{need}")
        return out

    deadline = time.monotonic() + timeout
    while missing := in_netns(info["netns"], short):
        if time.monotonic() > deadline:
            raise TimeoutError(f"SLI samples still missing after {timeout:.0f}s: {', '.join(missing)}")
        time.sleep(2)
