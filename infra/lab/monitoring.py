"""The lab's monitoring: Prometheus and blackbox_exporter (Debian's packages)
inside the lab's management namespace ``<lab>-mgmt``, served as production serves it.

``credentials(lab)`` (called by ``lab up``, before the environment is written) makes a
monitoring CA, Prometheus's serving certificate (127.0.0.1) and the checks' basic-auth
password (0600, never printed) in ``<lab dir>/monitoring/tls``; the environment names the
CA, the user and the password file. ``start(lab, model)`` renders the configuration from
the province file (:mod:`infra.render.prometheus`) into ``<lab dir>/monitoring/``, writes
Prometheus's web config file (TLS + basic auth with a bcrypt hash), starts
blackbox_exporter and Prometheus with ``ip netns exec <lab>-mgmt`` (both listen on the
namespace's loopback only; Prometheus keeps data longer than the SLA window), waits until
Prometheus answers over HTTPS with those credentials and records both processes in the
lab's state (component ``monitoring``) so that ``dcops lab down`` ends them by PID.  Probes
go to the platforms' front ends and the sites' tunnel addresses, which only exist inside
the lab. A TLS front end is probed over HTTPS and its certificate verified against the lab
province's CA (:func:`lab_province`: the province as the lab's probers see it, with
``datacenter.certificates.ca_file`` pointing at ``<lab dir>/province-pki/province-ca.crt``; the
lab writes nothing outside its directory).
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import math
import os
import re
import secrets
import time
from pathlib import Path
from typing import Callable

import yaml

from checks import promrun
from infra.model import ProvinceFile
from infra.paths import lab_dir
from infra.render import prometheus as R

COMPONENT = "monitoring"
PROM_LISTEN = "127.0.0.1:9090"
BLACKBOX_LISTEN = "127.0.0.1:9115"
RETENTION = "400d"


USER = "dcops-checks"


def mon_dir(lab: str) -> Path:
    return lab_dir(lab) / "monitoring"


def tls_dir(lab: str) -> Path:
    return mon_dir(lab) / "tls"


def _private(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(data)


def credentials(lab: str) -> dict[str, Path | str]:
    """The monitoring CA, Prometheus's certificate and key, and the checks' password (made once)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    d = tls_dir(lab)
    files = {"ca": d / "ca.crt", "cert": d / "prometheus.crt", "key": d / "prometheus.key",
             "password": d / "checks.password", "user": USER}
    if all(Path(files[k]).exists() for k in ("ca", "cert", "key", "password")):
        return files
    now = dt.datetime.now(dt.timezone.utc)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "dcops lab"),
                         x509.NameAttribute(NameOID.COMMON_NAME, f"dcops {lab} monitoring CA")])
    ca = (x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name).public_key(ca_key.public_key())
          .serial_number(x509.random_serial_number()).not_valid_before(now - dt.timedelta(minutes=5))
          .not_valid_after(now + dt.timedelta(days=365))
          .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
          .add_extension(x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True)
          .sign(ca_key, hashes.SHA256()))
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "prometheus")]))
            .issuer_name(ca_name).public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5)).not_valid_after(now + dt.timedelta(days=365))
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
            .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost"),
                                                        x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
            .sign(ca_key, hashes.SHA256()))
    d.mkdir(parents=True, exist_ok=True, mode=0o700)
    Path(files["ca"]).write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    Path(files["cert"]).write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    _private(Path(files["key"]), key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                                   serialization.NoEncryption()))
    _private(Path(files["password"]), secrets.token_urlsafe(24).encode())
    return files


def web_config(lab: str) -> Path:
    """Prometheus's web config file: TLS with the lab's certificate, basic auth (bcrypt hash only)."""
    import bcrypt

    c = credentials(lab)
    pw = Path(c["password"]).read_bytes().strip()
    doc = {
        "tls_server_config": {"cert_file": str(c["cert"]), "key_file": str(c["key"])},
        "basic_auth_users": {USER: bcrypt.hashpw(pw, bcrypt.gensalt(rounds=10)).decode()},
    }
    p = mon_dir(lab) / "web-config.yml"
    _private(p, yaml.safe_dump(doc, sort_keys=False).encode())
    return p


def lab_province(lab: str, pf: ProvinceFile) -> ProvinceFile:
    """The province as the lab's probers see it: where a platform serves TLS, the CA bundle
    (``datacenter.certificates.ca_file``) is the lab province's CA that signed its front ends'
    certificates (:mod:`infra.lab.hosts`), in the lab directory, instead of the province file's
    path on a real probing host."""
    if not any(R.probe_tls(p) for p in pf.platforms):
        return pf
    from infra.lab import pki
    from infra.model import Certificates

    ca = pki.province_ca(pki.province_dir(lab))
    dc = pf.datacenter.model_copy(update={"certificates": Certificates(ca_file=str(ca.cert))})
    return pf.model_copy(update={"datacenter": dc})


def running(lab: str) -> dict | None:
    """``{"url", "netns"}`` when the lab's Prometheus runs, else None."""
    from infra.lab.state import LabState, pid_alive

    st = LabState.load(lab)
    procs = [p for p in st.processes(COMPONENT) if p["name"] == "prometheus" and pid_alive(p["pid"], p.get("start_time"))]
    if not procs:
        return None
    return {"url": st.get("monitoring.prometheus_url"), "netns": st.get("monitoring.netns")}


def placement(lab: str) -> dict[str, str]:
    """The lab stack's DR placement record (``<lab dir>/work/dr/placement.json``): platform id ->
    the cluster it runs on, for the platforms a failover moved."""
    from infra.dr.placement import placement as read_placement
    from infra.paths import lab_dir

    return read_placement(lab_dir(lab) / "work")


# node_exporter's scrapes the lab's one machine pays for: about 30 ms of CPU each (every default
# collector), 15 s apart on each of 700 hosts = 1.6 of 2 cores at 700 sites, measured with the lab's
# hosts idle. Nothing dcops checks reads those series (DCOPS-MON-002 scrapes each host itself), so
# a big lab spaces them out to keep about NODE_SCRAPES_PER_S scrapes a second in all.
NODE_SCRAPES_PER_S = 2.5
NODE_SCRAPE_MAX_S = 300  # within Prometheus' 5-minute staleness
# The node_exporter series the lab's Prometheus stores (nothing reads the others): about a
# thousand series per host took 1.4 GB at 700 sites, and the machine then stalled on memory
# (PSI "full" 25 % over 5 minutes) during the drift run's SSH connects.
NODE_KEEP: tuple[str, ...] = ("node_exporter_build_info", "node_boot_time_seconds", "node_time_seconds",
                              "node_load1", "node_memory_MemAvailable_bytes")


_PROM_DURATION = re.compile(r"(?:(\d+)d)?(?:(\d+)h)?(?:(\d+)m(?!s))?(?:(\d+)s)?(?:(\d+)ms)?")
_PROM_UNIT_S = (86400, 3600, 60, 1, 0.001)


def duration_seconds(text: str) -> float:
    """Seconds in a Prometheus duration ("15s", "1m", "1m30s", "500ms"); ValueError otherwise."""
    m = _PROM_DURATION.fullmatch(text.strip())
    if not text.strip() or m is None or not any(m.groups()):
        raise ValueError(f"not a Prometheus duration: {text!r} (e.g. 15s, 1m, 1m30s)")
    return sum(int(g) * u for g, u in zip(m.groups(), _PROM_UNIT_S) if g)


def node_scrape_interval(sites: int, base_s: int = 15) -> str:
    """The lab's node_exporter scrape interval for ``sites`` hosts: ``base_s`` up to
    ``base_s * NODE_SCRAPES_PER_S`` sites, then longer (at most NODE_SCRAPE_MAX_S)."""
    return f"{max(base_s, min(NODE_SCRAPE_MAX_S, math.ceil(sites / NODE_SCRAPES_PER_S)))}s"


def render(lab: str, pf: ProvinceFile, scrape_interval: str = "15s", evaluation_interval: str = "15s") -> dict[str, Path]:
    """Render the lab's monitoring configuration from the province as placed (the probes follow a
    platform that a failover moved to its DR address)."""
    from checks.catalog import catalog

    d = mon_dir(lab)
    d.mkdir(parents=True, exist_ok=True)
    sp = catalog().get("DCOPS-SLA-003").params
    site_slo = R.SiteSLO(float(sp.get("target", R.SITE_SLO.availability)), int(sp.get("window_days", R.SITE_SLO.window_days)))
    return R.render(lab_province(lab, pf), d, site_slo, placement=placement(lab), blackbox=BLACKBOX_LISTEN,
                    scrape_interval=scrape_interval, evaluation_interval=evaluation_interval,
                    node_scrape_interval=node_scrape_interval(len(pf.wan.sites), max(1, math.ceil(duration_seconds(scrape_interval)))),
                    node_keep=NODE_KEEP)


def reload(lab: str) -> list[str]:
    """SIGHUP the lab's running Prometheus and blackbox_exporter (by recorded PID): they re-read
    their configuration. The names of the processes signalled."""
    import signal

    from infra.lab.state import LabState, pid_alive

    done = []
    for p in LabState.load(lab).processes(COMPONENT):
        if p["name"] in ("prometheus", "blackbox_exporter") and pid_alive(p["pid"], p.get("start_time")):
            os.kill(p["pid"], signal.SIGHUP)
            done.append(p["name"])
    return done


def start(lab: str, pf: ProvinceFile, scrape_interval: str = "15s", evaluation_interval: str = "15s",
          progress: Callable[[str], None] = print) -> dict:
    """Start the lab's monitoring; when it already runs, re-render its configuration (from the
    province and the DR placement record) and reload it."""
    from infra.lab import netexec
    from infra.lab.state import LabState

    have = running(lab)
    if have:
        render(lab, pf, scrape_interval, evaluation_interval)
        moved = placement(lab)
        progress(f"monitoring already runs in {have['netns']} ({have['url']}): configuration re-rendered"
                 + (f" (placement: {', '.join(f'{k} on {v}' for k, v in sorted(moved.items()))})" if moved else "")
                 + f" and reloaded ({', '.join(reload(lab)) or 'nothing to signal'})")
        return have
    ns = netexec.netns(lab, "mgmt")
    d = mon_dir(lab)
    files = render(lab, pf, scrape_interval, evaluation_interval)
    st = LabState.load(lab)
    logs = d / "logs"
    logs.mkdir(exist_ok=True)

    bb_argv = [promrun.blackbox_bin(), f"--config.file={files['blackbox']}", f"--web.listen-address={BLACKBOX_LISTEN}"]
    with open(logs / "blackbox.log", "ab") as f:
        import subprocess

        bb = subprocess.Popen(promrun.netns_cmd(ns, bb_argv), stdout=f, stderr=subprocess.STDOUT, start_new_session=True)
    st.add_process(COMPONENT, "blackbox_exporter", bb.pid, ports={"http": 9115}, log=str(logs / "blackbox.log"),
                   cmd=bb_argv, netns=ns)
    wc = web_config(lab)
    prom = promrun.start_prometheus(ns, files["prometheus"], d / "data", PROM_LISTEN, logs / "prometheus.log", retention=RETENTION,
                                    extra=[f"--web.config.file={wc}"])
    st.add_process(COMPONENT, "prometheus", prom.pid, ports={"https": 9090}, log=str(logs / "prometheus.log"),
                   cmd=list(prom.args), netns=ns)
    url = f"https://{PROM_LISTEN}"
    st.set("monitoring.prometheus_url", url)
    st.set("monitoring.netns", ns)
    c = credentials(lab)
    promrun.wait_ready(ns, url, prom, ca_file=str(c["ca"]), auth=(USER, Path(c["password"]).read_text().strip()))
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


def prom(lab: str):
    """A client of the lab's Prometheus (HTTPS, the lab's CA, the checks' credentials)."""
    from checks.sla import Prom

    c = credentials(lab)
    return Prom(f"https://{PROM_LISTEN}", 10.0, str(c["ca"]), (USER, Path(c["password"]).read_text().strip()))


def wait_for_samples(lab: str, pf: ProvinceFile, timeout: float = 120.0, sites: int = 0) -> None:
    """Wait until every platform has its 1h availability and latency ratios recorded and, with
    ``sites``, every site started in the lab its 1h availability ratio (a fresh Prometheus has
    none: the SLA checks would report "series missing" until its first rule evaluation)."""
    from checks.netns import in_netns

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
            rows = prom(lab).vector(q)
            have = int(float(rows[0]["value"][1])) if rows else 0
            if have < need:
                out.append(f"{what} {have}/{need}")
        return out

    deadline = time.monotonic() + timeout
    while missing := in_netns(info["netns"], short):
        if time.monotonic() > deadline:
            raise TimeoutError(f"SLI samples still missing after {timeout:.0f}s: {', '.join(missing)}")
        time.sleep(2)
