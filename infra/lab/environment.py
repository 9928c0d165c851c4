"""The lab's environment: what `dcops lab up` writes so that dcops reaches the lab exactly as
it reaches a real province, through a stack config and nothing else.

``<lab dir>/Pulumi.lab.yaml`` (stack ``lab``; ``dcops lab env`` exports
``DCOPS_CONFIG_FILE`` pointing at it) holds::

    config:
      dcops:province: <the province file>
      dcops:environment:
        kind: lab
        management_netns: <lab>-mgmt      # every dcops command runs there (its clients too)
        work_dir: <lab dir>/work
        backend: {url: file://<lab dir>/pulumi-state, passphrase: {file: <lab dir>/passphrase}, home: ...}
        clusters:
          primary:
            admin:  {kubeconfig: <lab dir>/k8s/primary/kubeconfig}
            checks: {kubeconfig: <lab dir>/k8s/primary/kubeconfig-auditor}   # group dcops:auditors
            evidence: {apiserver_args_file: ..., etcd: {endpoints: [...], ca_file, cert_file, key_file}}
        wan: {user: dcops, identity_file, known_hosts, become: {password: {file}}, audit_user: dcops-audit,
              addresses: {gateway: <mgmt address>}, hosts: [...]}
        prometheus: {url: https://127.0.0.1:9090, ca_file, basic_auth: {username, password: {file: ...}}}
        log_server: {host: gateway}

The API servers and etcd listen on this machine's 127.0.0.1; ``infra.lab.portfwd`` publishes
the same ports inside ``<lab>-mgmt`` so the same kubeconfigs work there.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import yaml

from ..model import ProvinceFile
from ..paths import lab_dir
from . import controlplane as cp
from . import monitoring, netexec
from .state import LabState

COMPONENT = "environment"
KEX = ["curve25519-sha256", "curve25519-sha256@libssh.org", "sntrup761x25519-sha512@openssh.com"]


def config_path(lab: str) -> Path:
    return lab_dir(lab) / "Pulumi.lab.yaml"


def _apiserver_args(lab: str, cluster: str) -> Path | None:
    """Write the recorded kube-apiserver command line of a cluster as a JSON list (the evidence
    an operator would copy from a control-plane node's static pod manifest)."""
    st = LabState.load(lab)
    procs = [p for p in st.processes() if p.get("cluster") == cluster
             and str((p.get("cmd") or [""])[0]).endswith("kube-apiserver")]
    if not procs:
        return None
    p = cp.k8s_dir(lab, cluster) / "apiserver-args.json"
    p.write_text(json.dumps([str(x) for x in procs[-1]["cmd"][1:]], indent=1) + "\n")
    return p


def _cluster(lab: str, cluster: str) -> dict[str, Any]:
    d = cp.k8s_dir(lab, cluster) / "pki"
    ports = LabState.load(lab).get(f"k8s.{cluster}.ports") or {}
    out: dict[str, Any] = {
        "admin": {"kubeconfig": str(cp.kubeconfig_path(lab, cluster))},
        "checks": {"kubeconfig": str(cp.auditor_kubeconfig_path(lab, cluster))},
    }
    ev: dict[str, Any] = {}
    args = _apiserver_args(lab, cluster)
    if args:
        ev["apiserver_args_file"] = str(args)
    if ports.get("etcd_client"):
        ca = d / "etcd-ca.crt" if (d / "etcd-ca.crt").exists() else d / "ca.crt"
        ev["etcd"] = {"endpoints": [f"https://127.0.0.1:{ports['etcd_client']}"], "ca_file": str(ca),
                      "cert_file": str(d / "apiserver-etcd-client.crt"), "key_file": str(d / "apiserver-etcd-client.key")}
    if ev:
        out["evidence"] = ev
    return out


def build(lab: str, model: ProvinceFile, province: Path) -> dict[str, Any]:
    """The lab's environment mapping (validated by :mod:`infra.environment` when loaded)."""
    d = lab_dir(lab)
    st = LabState.load(lab)
    try:
        lay = netexec.layout(lab)
    except netexec.LabNotRunning:
        lay = {}
    ssh = netexec.ssh_paths(lab)
    creds = monitoring.credentials(lab)
    env: dict[str, Any] = {
        "kind": "lab",
        "name": f"lab {lab}",
        "work_dir": str(d / "work"),
        "backend": {
            "url": f"file://{d / 'pulumi-state'}",
            "secrets_provider": "passphrase",
            "passphrase": {"file": str(d / "passphrase")},
            "home": str(d / "pulumi-home"),
        },
        "clusters": {c: _cluster(lab, c) for c in cp.clusters_of(st)},
        "wan": {
            "user": "dcops",
            "identity_file": str(ssh["key"]),
            "known_hosts": str(ssh["known_hosts"]),
            "kex_algorithms": KEX,
            # sudo with the lab's password (made by the lab, 0600 in its management dir)
            "become": {"method": "sudo", **({"password": {"file": str(ssh["become_password"])}}
                                            if ssh["become_password"].exists() else {})},
            # the checks log in as the read-only account: the rollout's evidence collector only
            "audit_user": "dcops-audit",
        },
        "prometheus": {
            "url": f"https://{monitoring.PROM_LISTEN}",
            "ca_file": str(creds["ca"]),
            "basic_auth": {"username": monitoring.USER, "password": {"file": str(creds["password"])}},
        },
        "log_server": {"host": "gateway"},
    }
    layout_ssh = dict(lay.get("ssh") or {})
    if lay:
        env["management_netns"] = lay["netns"]["mgmt"]
        addr = {}
        gw = layout_ssh.get("gw") or layout_ssh.get("hub")
        if gw and gw != model.wan.hub.wan_address:
            addr["gateway"] = gw
        gw2 = layout_ssh.get("gw2") if model.wan.standby else None  # the standby hub (wan.hubs[1])
        if gw2 and gw2 != model.wan.standby.wan_address:
            addr["gateway-standby"] = gw2
        for s in model.wan.sites:
            a = layout_ssh.get(s.id)
            if a and a != s.wan_address:
                addr[s.id] = a
        if addr:
            env["wan"]["addresses"] = addr
        started = [s.id for s in model.wan.sites if s.id in layout_ssh]
        if len(started) != len(model.wan.sites) or not gw or (model.wan.standby and not gw2):
            env["wan"]["hosts"] = (["gateway"] if gw else []) + (["gateway-standby"] if gw2 else []) + started
    else:  # --no-hosts: no WAN, no management namespace
        env["wan"]["hosts"] = []
    return env


def use_object_store(lab: str, env: dict[str, Any]) -> None:
    """Point the environment's Pulumi backend at the lab's S3-compatible object store (shared,
    locking state, as a team keeps it), when the lab runs one (`dcops lab up --state s3`)."""
    try:
        from . import objectstore
    except ImportError:  # the object store is an optional part of the lab
        return
    if not objectstore.running(lab):
        return
    env["backend"].update({
        "url": objectstore.backend_url(),
        "credentials_file": str(objectstore.credentials_path(lab)),
        "aws_config_file": str(objectstore.config_path(lab)),
        "profile": objectstore.PROFILE,
        "ca_file": str(objectstore.ca_path(lab)),
    })


def write(lab: str, model: ProvinceFile, province: Path) -> Path:
    """Write ``<lab dir>/Pulumi.lab.yaml`` (0600): the province and the environment; keeps the
    stack's encryption salt and any other config already there."""
    path = config_path(lab)
    doc: dict[str, Any] = {}
    if path.exists():
        doc = yaml.safe_load(path.read_text()) or {}
    salt = {k: v for k, v in doc.items() if k in ("encryptionsalt", "encryptedkey", "secretsprovider")}
    config = dict(doc.get("config") or {})
    config["dcops:province"] = str(Path(province).resolve())
    env = build(lab, model, province)
    use_object_store(lab, env)
    config["dcops:environment"] = env
    text = ("# The lab's stack config, written by `dcops lab up`: the province and the environment\n"
            "# (where dcops connects). Use: dcops <command> -s lab --config-file " + str(path) + "\n"
            + yaml.safe_dump({"config": config, **salt}, sort_keys=False, allow_unicode=True, width=200))
    tmp = path.with_suffix(f".tmp{os.getpid()}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(text)
    os.replace(tmp, path)
    return path


def start_forwarder(lab: str) -> int | None:
    """Publish every cluster's API server and etcd ports inside ``<lab>-mgmt`` (recorded; PID)."""
    import subprocess
    import sys

    from ..paths import REPO

    st = LabState.load(lab)
    if any(p["name"] == "portfwd" for p in st.alive(COMPONENT)):
        return None
    try:
        ns = netexec.netns(lab, "mgmt")
    except (netexec.LabNotRunning, KeyError):
        return None
    ports: list[int] = []
    for c in cp.clusters_of(st):
        pp = st.get(f"k8s.{c}.ports") or {}
        ports += [int(pp[k]) for k in ("apiserver", "etcd_client") if pp.get(k)]
    if not ports:
        return None
    log = lab_dir(lab) / "portfwd.log"
    with open(log, "ab") as f:
        proc = subprocess.Popen([sys.executable, "-m", "infra.lab.portfwd", ns, *map(str, ports)], cwd=str(REPO),
                                stdout=f, stderr=subprocess.STDOUT, start_new_session=True)
    st.add_process(COMPONENT, "portfwd", proc.pid, ports={f"p{i}": p for i, p in enumerate(ports)}, log=str(log),
                   cmd=list(proc.args), netns=ns)
    import time

    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"the port forwarder exited ({log})")
        if "forwarding" in log.read_text(errors="replace"):
            return proc.pid
        time.sleep(0.1)
    raise RuntimeError(f"the port forwarder did not start in 10 s ({log})")


def shell_exports(lab: str) -> str:
    """`export` lines to use the lab's stack by hand (values only, never a secret)."""
    import shlex

    return "\n".join(f"export {k}={shlex.quote(v)}" for k, v in (
        ("DCOPS_STACK", "lab"), ("DCOPS_CONFIG_FILE", str(config_path(lab))),
    ))

