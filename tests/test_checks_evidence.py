"""Evidence that cannot be read is an error, never a pass (issue 16).

For each control that could pass on unreadable evidence, a host whose evidence reads well makes
the control pass (so the test can fail), and the same host with that evidence made unreadable
gives ``error`` with the reason. The host is a stand-in for testinfra's: commands that read
files run for real through /bin/sh over a directory that plays the host's root (the control's own
shell command, unchanged but for the root), the others answer the outputs a Debian 12 host gives.
The cluster case (K8S-007) runs on a snapshot, the SLA case (SLA-004) on a stand-in of the
Prometheus HTTP API. The lab cases are in tests/test_checks_host.py (``test_lab_unreadable``).
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from checks import sla
from checks import scenario_k8s as SK
from checks.catalog import catalog
from checks.controls import cluster as C
from checks.controls import host as H
from checks.result import Status
from infra.paths import REPO
from infra.render import endpoint as E
from infra.validate import load_province

from conftest import FakeHost, Out

PROVINCE = REPO / "stacks" / "province-lab.yaml"
HUB_KEY = "x" * 42 + "A="


@pytest.fixture(scope="module")
def pf():
    return load_province(PROVINCE)


SSHD_T = """port 22
permitrootlogin no
passwordauthentication no
ciphers chacha20-poly1305@openssh.com,aes256-gcm@openssh.com
macs hmac-sha2-512-etm@openssh.com
kexalgorithms curve25519-sha256
"""

SS = """tcp LISTEN 0 128 0.0.0.0:22 0.0.0.0:* users:(("sshd",pid=1,fd=3))
udp UNCONN 0 0 0.0.0.0:51820 0.0.0.0:*
tcp LISTEN 0 4096 {tunnel}:9100 0.0.0.0:* users:(("prometheus-node",pid=2,fd=3))
"""

DPKG = "base-files installed\ndpkg installed\nopenssh-server installed\ntelnetd not-installed\n"


def _ctx(pf, tmp_path, answers=None, kind="endpoint", hub_key=HUB_KEY, hub_err=""):
    site = pf.wan.sites[0]
    t = H.targets(pf, {E.GATEWAY if kind == "gateway" else site.id})[0]
    base = {"/usr/sbin/sshd -T": Out(0, SSHD_T), "ss -H -tulnp": Out(0, SS.format(tunnel=t.tunnel_address)),
            "dpkg-query -W": Out(0, DPKG), "for f in": Out(0, ""), "rsyslogd -N1": Out(0, "")}
    base.update(answers or {})
    return H.HostCtx(t, pf, FakeHost(tmp_path, base), hub_key, hub_pubkey_error=hub_err)


def _run(cid, x):
    """The control as check_host runs it: an exception is an error with its reason."""
    try:
        return H.CONTROLS[cid](catalog().get(cid), x)
    except Exception as e:
        return H.Result.err(cid, x.target.host, f"{e.__class__.__name__}: {e}")


def _etc(tmp_path: Path, files: dict[str, str]) -> None:
    for path, text in files.items():
        p = tmp_path / path.lstrip("/")
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(text)


# ------------------------------------------------------------------ NTP-002: the time sources' files


def test_ntp002_reads_its_files_or_errs(pf, tmp_path):
    hub = pf.wan.hub.ntp_server
    _etc(tmp_path, {E.CHRONY_CONF: f"server {hub} iburst\nconfdir /etc/chrony/conf.d\n"})
    assert _run("DCOPS-NTP-002", _ctx(pf, tmp_path)).status == Status.passed
    # a file of the conf dir that cannot be read (a directory where a file should be)
    (tmp_path / "etc/chrony/conf.d/extra.conf").mkdir(parents=True)
    r = _run("DCOPS-NTP-002", _ctx(pf, tmp_path))
    assert r.status == Status.error and "extra.conf" in r.reason, r
    (tmp_path / "etc/chrony/conf.d/extra.conf").rmdir()
    # a source added in a conf dir file is seen (was: 'cat ... || true' hid unreadable ones)
    _etc(tmp_path, {"/etc/chrony/conf.d/pool.conf": "pool 2.debian.pool.ntp.org iburst\n"})
    assert _run("DCOPS-NTP-002", _ctx(pf, tmp_path)).status == Status.failed
    # chrony.conf itself missing
    for f in (tmp_path / "etc/chrony").rglob("*.conf"):
        f.unlink()
    r = _run("DCOPS-NTP-002", _ctx(pf, tmp_path))
    assert r.status == Status.error and E.CHRONY_CONF in r.reason, r


# ------------------------------------------------------------------ FW-005: the package database


def test_fw005_package_database_unreadable_is_an_error(pf, tmp_path):
    assert _run("DCOPS-FW-005", _ctx(pf, tmp_path)).status == Status.passed
    bad = _run("DCOPS-FW-005", _ctx(pf, tmp_path, {"dpkg-query -W": Out(0, DPKG.replace("telnetd not-installed", "telnetd installed"))}))
    assert bad.status == Status.failed and "telnetd" in bad.reason
    r = _run("DCOPS-FW-005", _ctx(pf, tmp_path, {"dpkg-query -W": Out(2, "", "dpkg-query: error: parsing file '/var/lib/dpkg/status'")}))
    assert r.status == Status.error and "dpkg" in r.reason, r
    r = _run("DCOPS-FW-005", _ctx(pf, tmp_path, {"dpkg-query -W": Out(0, "")}))
    assert r.status == Status.error and "package" in r.reason, r


# ------------------------------------------------------------------ WG-001: the hub's key


def _wg_answers(pf):
    site = pf.wan.sites[0]
    hub = pf.wan.hub
    allowed = " ".join(E.site_allowed_ips(pf, site))
    return {"wg show wg0 endpoints": Out(0, f"{HUB_KEY}\t{hub.wan_address}:{hub.listen_port}\n"),
            "wg show wg0 allowed-ips": Out(0, f"{HUB_KEY}\t{allowed}\n"),
            "ip -4 -o addr show dev wg0": Out(0, f"5: wg0    inet {site.tunnel_address}/32 scope global wg0\n")}


def test_wg001_hub_key_unreadable_is_an_error(pf, tmp_path):
    assert _run("DCOPS-WG-001", _ctx(pf, tmp_path, _wg_answers(pf))).status == Status.passed
    assert _run("DCOPS-WG-001", _ctx(pf, tmp_path, _wg_answers(pf), hub_key="y" * 42 + "A=")).status == Status.failed
    r = _run("DCOPS-WG-001", _ctx(pf, tmp_path, _wg_answers(pf), hub_key=None, hub_err="gateway unreachable: timeout"))
    assert r.status == Status.error and "hub's public key" in r.reason and "gateway unreachable" in r.reason, r


# ------------------------------------------------------------------ FW-003: the listening sockets


def test_fw003_empty_listing_is_an_error(pf, tmp_path):
    assert _run("DCOPS-FW-003", _ctx(pf, tmp_path)).status == Status.passed
    for out in (Out(0, ""), Out(1, "", "Cannot open netlink socket: Permission denied")):
        r = _run("DCOPS-FW-003", _ctx(pf, tmp_path, {"ss -H -tulnp": out}))
        assert r.status == Status.error, r


class _Rereads(FakeHost):
    """A host whose ``ss`` answers ``listings`` one after the other (the last one from then on)."""

    def __init__(self, root, answers, listings):
        super().__init__(root, answers)
        self.listings, self.ss_reads = list(listings), 0

    def run(self, cmd):
        if cmd.startswith("ss -H -tulnp"):
            self.ss_reads += 1
            return self.listings[min(self.ss_reads, len(self.listings)) - 1]
        return super().run(cmd)


def _fw003(pf, tmp_path, *extra_rows):
    x = _ctx(pf, tmp_path)
    base = SS.format(tunnel=x.target.tunnel_address)
    x.host = _Rereads(tmp_path, x.host.answers, [Out(0, base + rows) for rows in extra_rows])
    return x, _run("DCOPS-FW-003", x)


def test_fw003_an_ownerless_socket_gone_when_read_again_is_transient(pf, tmp_path, monkeypatch):
    """A UDP socket with no owner (a client's socket, closing while ss read /proc) is read again;
    gone then, it is evidence of a transient socket, not a failure."""
    monkeypatch.setattr(H, "FW003_REREAD_PAUSE_S", 0)
    x, r = _fw003(pf, tmp_path, "udp UNCONN 0 0 0.0.0.0:41234 0.0.0.0:*\n", "")
    assert r.status == Status.passed and x.host.ss_reads == 2, r
    assert r.evidence["transient"] == ["udp 0.0.0.0:41234"] and r.evidence["unexpected"] == [], r.evidence


def test_fw003_an_ownerless_socket_still_there_fails(pf, tmp_path, monkeypatch):
    monkeypatch.setattr(H, "FW003_REREAD_PAUSE_S", 0)
    row = "udp UNCONN 0 0 0.0.0.0:41234 0.0.0.0:*\n"
    x, r = _fw003(pf, tmp_path, row, row)
    assert r.status == Status.failed and x.host.ss_reads == 2, r
    assert r.evidence["unexpected"] == ["udp 0.0.0.0:41234"] and "41234" in r.reason, r


def test_fw003_an_owned_unexpected_socket_fails_on_the_first_reading(pf, tmp_path):
    x, r = _fw003(pf, tmp_path, 'tcp LISTEN 0 5 0.0.0.0:23 0.0.0.0:* users:(("in.telnetd",pid=9,fd=3))\n', "")
    assert r.status == Status.failed and x.host.ss_reads == 1 and "in.telnetd" in r.reason, r
    assert "transient" not in r.evidence


def test_fw003_read_again_unreadable_is_an_error(pf, tmp_path, monkeypatch):
    monkeypatch.setattr(H, "FW003_REREAD_PAUSE_S", 0)
    x = _ctx(pf, tmp_path)
    base = SS.format(tunnel=x.target.tunnel_address)
    x.host = _Rereads(tmp_path, x.host.answers, [Out(0, base + "udp UNCONN 0 0 0.0.0.0:41234 0.0.0.0:*\n"),
                                                 Out(1, "", "Cannot open netlink socket")])
    r = _run("DCOPS-FW-003", x)
    assert r.status == Status.error and "read again" in r.reason, r


# ------------------------------------------------------------------ SSH-009: the offered algorithms


@pytest.mark.parametrize("key", ["ciphers", "macs", "kexalgorithms"])
def test_ssh009_missing_algorithm_list_is_an_error(pf, tmp_path, key):
    assert _run("DCOPS-SSH-009", _ctx(pf, tmp_path)).status == Status.passed
    cut = "\n".join(l for l in SSHD_T.splitlines() if not l.startswith(key + " ")) + "\n"
    r = _run("DCOPS-SSH-009", _ctx(pf, tmp_path, {"/usr/sbin/sshd -T": Out(0, cut)}))
    assert r.status == Status.error and key in r.reason, r


def test_sshd_config_unreadable_is_an_error_for_every_sshd_control(pf, tmp_path):
    for out in (Out(255, "", "/etc/ssh/sshd_config: Permission denied"), Out(0, "")):
        for cid in ("DCOPS-SSH-001", "DCOPS-SSH-002", "DCOPS-SSH-006", "DCOPS-SSH-009"):
            r = _run(cid, _ctx(pf, tmp_path, {"/usr/sbin/sshd -T": out}))
            assert r.status == Status.error, (cid, r)


# ------------------------------------------------------------------ LOG-001/003: rsyslog's files


def test_rsyslog_conf_unreadable_is_an_error(pf, tmp_path):
    fwd = E.render_site(pf, pf.wan.sites[0].id, {E.GATEWAY: HUB_KEY}).file(E.RSYSLOG_FORWARD).content
    _etc(tmp_path, {"/etc/rsyslog.conf": "auth,authpriv.* /var/log/auth.log\n", E.RSYSLOG_FORWARD: fwd})
    for cid in ("DCOPS-LOG-001", "DCOPS-LOG-003"):
        assert _run(cid, _ctx(pf, tmp_path)).status == Status.passed, cid
    (tmp_path / "etc/rsyslog.conf").unlink()
    for cid in ("DCOPS-LOG-001", "DCOPS-LOG-003"):
        r = _run(cid, _ctx(pf, tmp_path))
        assert r.status == Status.error and "rsyslog.conf" in r.reason, (cid, r)


# ------------------------------------------------------------------ SYS: a value that is not there


def test_sysctl_unreadable_is_an_error(pf, tmp_path):
    r = _run("DCOPS-SYS-005", _ctx(pf, tmp_path, {"sysctl -e": Out(0, "net.ipv4.tcp_syncookies = 1\n")}))
    assert r.status == Status.passed
    r = _run("DCOPS-SYS-005", _ctx(pf, tmp_path, {"sysctl -e": Out(0, "net.ipv4.tcp_syncookies = 0\n")}))
    assert r.status == Status.failed and "tcp_syncookies=0 (want 1)" in r.reason
    for out in (Out(255, "", "sysctl: cannot stat /proc/sys/net/ipv4/tcp_syncookies"), Out(0, ""),
                # the one sysctl process answers the other keys, not this one: an error naming it
                Out(255, "net.ipv4.ip_forward = 0\n", "sysctl: permission denied on key 'net.ipv4.tcp_syncookies'")):
        r = _run("DCOPS-SYS-005", _ctx(pf, tmp_path, {"sysctl -e": out}))
        assert r.status == Status.error and "tcp_syncookies" in r.reason, (out, r)


def test_one_sysctl_process_reads_every_key_the_controls_check():
    for cid, want in H.SYS_WANT.items():
        assert set(want) <= set(H.SYSCTL_KEYS), cid
    assert set(E.MACHINE_WIDE_SYSCTLS) <= set(H.SYSCTL_KEYS)
    assert H.SYSCTL_COMMAND.split()[:2] == ["sysctl", "-e"] and len(H.SYSCTL_COMMAND.split()) == 2 + len(H.SYSCTL_KEYS)


# ------------------------------------------------------------------ K8S-007: zero Secrets sampled


def test_k8s007_zero_secrets_sampled_needs_proof_that_etcd_was_read(pf):
    snap = SK.rendered_snapshot(pf, "primary")
    assert C.run(snap, pf, {"DCOPS-K8S-007"})[0].status == Status.passed
    snap.etcd_namespaces = []  # etcd answered, but not with this cluster's data
    r = C.run(snap, pf, {"DCOPS-K8S-007"})[0]
    assert r.status == Status.error and "zero Secrets sampled" in r.reason, r
    snap = SK.rendered_snapshot(pf, "primary")
    snap.apiserver_flags, snap.encryption_config_error = None, "FileNotFoundError: kube-apiserver.args"
    r = C.run(snap, pf, {"DCOPS-K8S-007"})[0]
    assert r.status == Status.error and "kube-apiserver.args" in r.reason, r
    snap = SK.rendered_snapshot(pf, "primary")
    snap.etcd_secrets, snap.etcd_error = None, "no etcd endpoint answered"
    r = C.run(snap, pf, {"DCOPS-K8S-007"})[0]
    assert r.status == Status.error and "etcd could not be read" in r.reason, r


# ------------------------------------------------------------------ SLA-004: the alert rules


class FakeProm:
    """The three answers SLA-004 reads: probe series, firing alerts, loaded rules."""

    def __init__(self, groups):
        self.groups = groups

    def vector(self, query, at=None):
        if query.startswith("probe_success"):
            return [{"metric": {"platform": "dvc", "job": "blackbox-platform"}, "value": [0, "1"]}]
        return []

    def rules(self, kind="alert"):
        return self.groups


def _page_rules(pf, health="ok"):
    from infra.render import prometheus as R

    groups = R.alert_rules(pf)["groups"]
    return [{"name": g["name"], "rules": [{"name": r["alert"], "labels": r["labels"], "health": health, "lastError": ""}
                                          for r in g["rules"]]} for g in groups]


def test_sla004_alert_rules_not_loaded_is_an_error(pf):
    ok = sla.no_page_alerts(FakeProm(_page_rules(pf)), "platform", "dvc")
    assert ok.status == Status.passed and ok.evidence["page_rules_loaded"] == ok.evidence["page_rules_expected"] == 4
    r = sla.no_page_alerts(FakeProm([]), "platform", "dvc")
    assert r.status == Status.error and "0 of the 4 page alert rules" in r.reason, r
    r = sla.no_page_alerts(FakeProm(_page_rules(pf, health="err")), "platform", "dvc")
    assert r.status == Status.error and "not evaluating" in r.reason, r


# ------------------------------------------------------------------ SYS-008: machine-wide kernel keys


def _sys008(pf, tmp_path, container: str, values: dict[str, str]):
    """``values``: keys whose value differs from the rendered one ("" : the key is not printed)."""
    want = {k: v for k, v in E.sysctls_for(True) if k in E.MACHINE_WIDE_SYSCTLS}
    out = "".join(f"{k} = {values.get(k, want[k])}\n" for k in want if values.get(k, want[k]))
    virt = Out(0, f"{container}\n") if container else Out(1, "none\n")
    return _run("DCOPS-SYS-008", _ctx(pf, tmp_path, {"systemd-detect-virt -c": virt, "sysctl -e": Out(0, out)}))


def test_sys008_verdicts_and_the_container_exception(pf, tmp_path):
    assert _sys008(pf, tmp_path, "", {}).status == Status.passed
    bad = _sys008(pf, tmp_path, "", {"kernel.kptr_restrict": "0"})
    assert bad.status == Status.failed and "kernel.kptr_restrict=0 (want 2)" in bad.reason
    # a container: the machine's keys are its host's: an exception, reported, never a pass
    r = _sys008(pf, tmp_path, "systemd-nspawn", {"kernel.kptr_restrict": "0", "net.core.bpf_jit_harden": ""})
    assert r.status == Status.not_assessed and "container (systemd-nspawn)" in r.reason and "kptr_restrict=0" in r.reason
    assert _sys008(pf, tmp_path, "systemd-nspawn", {}).status == Status.passed
    # unreadable on a real host: an error
    r = _sys008(pf, tmp_path, "", {"net.core.bpf_jit_harden": ""})
    assert r.status == Status.error and "net.core.bpf_jit_harden" in r.reason
    assert _run("DCOPS-SYS-008", _ctx(pf, tmp_path, {"systemd-detect-virt -c": Out(1, "none\n"),
                                                     "sysctl -e": Out(0, "")})).status == Status.error
    # systemd-detect-virt itself failing (not "none"): the container question is unanswered: an error
    assert _run("DCOPS-SYS-008", _ctx(pf, tmp_path, {"systemd-detect-virt -c": Out(127, "", "not found"),
                                                     "sysctl -e": Out(0, "")})).status == Status.error


def test_rollout_sysctl_step_fails_on_a_key_it_cannot_set():
    """The rendered repair exits 1 naming a key it cannot write (outside a container's machine-wide
    exception), run for real over a stand-in /proc/sys (a read-only key: a file mode 0444 for a
    user that is not root)."""
    import os

    import shutil
    import tempfile

    pf = load_province(PROVINCE)
    tmp_path = Path(tempfile.mkdtemp(prefix="dcops-sysctl-"))  # pytest's tmp dirs are closed to other users
    request_cleanup = lambda: shutil.rmtree(tmp_path, ignore_errors=True)  # noqa: E731
    script = E.render_site(pf, pf.wan.sites[0].id, {E.GATEWAY: HUB_KEY}).part("sysctl").converge[0].apply
    root = tmp_path / "proc"
    for k, v in E.sysctls_for(False):
        p = root / k.replace(".", "/")
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(v + "\n")
    ro = root / "net/ipv4/conf/all/send_redirects"
    ro.write_text("1\n")
    ro.chmod(0o444)
    local = script.replace("/proc/sys/", f"{root}/").replace("systemd-detect-virt -c", "false")
    user = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"] if os.geteuid() == 0 else []
    os.chmod(tmp_path, 0o777)
    for d, _, fs in os.walk(root):
        os.chmod(d, 0o777)
        for f in fs:
            if os.path.join(d, f) != str(ro):
                os.chmod(os.path.join(d, f), 0o666)
    try:
        r = subprocess.run([*user, "bash", "-c", local], capture_output=True, text=True)
    finally:
        request_cleanup()
    assert r.returncode == 1, (r.stdout, r.stderr)
    assert "net.ipv4.conf.all.send_redirects: cannot be set here (read-only): 1, want 0" in r.stderr
    assert "exception" not in r.stderr  # not a container: no exception applies


# ------------------------------------------------------------------ NTP-003, LOG-004, UPD-001 (issue 16)

SOURCES = """MS Name/IP address         Stratum Poll Reach LastRx Last sample
===============================================================================
^{state} {src:<27} {stratum}   6   {reach}    12   -234ns[-1234ns] +/-   45us
"""
TRACKING = "Reference ID    : {rid} ({ref})\nStratum         : {stratum}\nLeap status     : Normal\n"


def _ntp003(pf, tmp_path, tracking, sources):
    return _run("DCOPS-NTP-003", _ctx(pf, tmp_path, {"chronyc -n tracking": tracking, "chronyc -N sources": sources},
                                      kind="gateway"))


def test_ntp003_the_hub_follows_its_upstream_or_fails(pf, tmp_path):
    up = pf.wan.hub.time_upstream[0].address
    synced = Out(0, SOURCES.format(state="*", src=up, stratum=2, reach=377))
    r = _ntp003(pf, tmp_path, Out(0, TRACKING.format(rid="0A0A057B", ref=up, stratum=3)), synced)
    assert r.status == Status.passed and r.evidence["selected"] == [up], r
    # free-running: the local reference, the upstream unreachable
    lost = Out(0, SOURCES.format(state="?", src=up, stratum=0, reach=0))
    r = _ntp003(pf, tmp_path, Out(0, TRACKING.format(rid="7F7F0101", ref="", stratum=10)), lost)
    assert r.status == Status.failed and "free-running" in r.reason and f"{up} reach 0" in r.reason, r
    # following some other server
    other = Out(0, SOURCES.format(state="*", src="10.99.0.1", stratum=2, reach=377))
    r = _ntp003(pf, tmp_path, Out(0, TRACKING.format(rid="0A630001", ref="10.99.0.1", stratum=3)), other)
    assert r.status == Status.failed and "not configured" in r.reason, r
    # the province file names no upstream: fails whatever chrony shows
    data = pf.model_dump(mode="json")
    hub = data["wan"]["hubs"][0] if "hubs" in data["wan"] else data["wan"]["hub"]
    hub["time_upstream"] = []
    bare = type(pf).model_validate(data)
    r = _ntp003(bare, tmp_path, Out(0, TRACKING.format(rid="0A0A057B", ref=up, stratum=3)), synced)
    assert r.status == Status.failed and "wan.hub.time_upstream" in r.reason, r
    # a hub that does not serve the WAN's time: assessed on the time server, not here
    hub["ntp_server"] = "10.10.5.200"
    r = _ntp003(type(pf).model_validate(data), tmp_path, Out(0, ""), Out(0, ""))
    assert r.status == Status.not_assessed and "10.10.5.200" in r.reason, r


def test_ntp003_unreadable_sources_are_an_error(pf, tmp_path):
    up = pf.wan.hub.time_upstream[0].address
    good = Out(0, TRACKING.format(rid="0A0A057B", ref=up, stratum=3))
    r = _ntp003(pf, tmp_path, Out(1, "", "506 Cannot talk to daemon"), Out(0, SOURCES.format(state="*", src=up, stratum=2, reach=377)))
    assert r.status == Status.error and "Cannot talk to daemon" in r.reason, r
    r = _ntp003(pf, tmp_path, good, Out(0, ""))
    assert r.status == Status.error and "no source table" in r.reason, r
    r = _ntp003(pf, tmp_path, Out(0, "garbage\n"), Out(0, SOURCES.format(state="*", src=up, stratum=2, reach=377)))
    assert r.status == Status.error and "no reference" in r.reason, r


DEBIAN_LOGROTATE = "weekly\nrotate 4\ncreate\ninclude /etc/logrotate.d\n"


def _log004(pf, tmp_path, files, installed=True):
    _etc(tmp_path, files)
    return _run("DCOPS-LOG-004", _ctx(pf, tmp_path, {"for p in /usr/sbin/logrotate": Out(0 if installed else 1, "/usr/sbin/logrotate\n" if installed else "")},
                                      kind="gateway"))


def _rendered_logrotate(pf) -> str:
    gw = E.render_gateway(pf, {E.GATEWAY: HUB_KEY})
    return next(f.content for f in gw.part("logging").files if f.path == E.LOGROTATE_REMOTE)


def test_log004_retention_from_the_log_servers_logrotate(pf, tmp_path):
    need = pf.datacenter.log_retention_days
    rendered = _rendered_logrotate(pf)
    r = _log004(pf, tmp_path, {"/etc/logrotate.conf": DEBIAN_LOGROTATE, E.LOGROTATE_REMOTE: rendered})
    assert r.status == Status.passed and r.evidence["rotation"][0]["kept_days"] == need, r
    # 30 days kept: below the province's retention
    r = _log004(pf, tmp_path, {E.LOGROTATE_REMOTE: rendered.replace(f"rotate {need}", "rotate 30")})
    assert r.status == Status.failed and "30 days" in r.reason and f"{need} required" in r.reason, r
    # maxage shorter than rotate: maxage wins
    r = _log004(pf, tmp_path, {E.LOGROTATE_REMOTE: rendered.replace(f"maxage {need}", "maxage 60")})
    assert r.status == Status.failed and "60 days" in r.reason, r
    # no rule of its own: the global weekly/rotate 4 of logrotate.conf applies through a catch-all rule
    (tmp_path / E.LOGROTATE_REMOTE.lstrip("/")).unlink()
    r = _log004(pf, tmp_path, {"/etc/logrotate.d/all": "/var/log/*/*.log {\n\tmissingok\n}\n"})
    assert r.status == Status.failed and "28 days" in r.reason, r


def test_log004_level_minimum_and_unreadable(pf, tmp_path):
    # a province retention under the level's minimum is refused by validation; the control still
    # holds the level's minimum (90 days at level 3)
    data = pf.model_dump(mode="json")
    data["datacenter"]["log_retention_days"] = 30
    low = type(pf).model_validate(data)
    r = _log004(low, tmp_path, {"/etc/logrotate.conf": DEBIAN_LOGROTATE,
                                E.LOGROTATE_REMOTE: _rendered_logrotate(low)})
    assert r.status == Status.failed and "90 required" in r.reason, r
    # logrotate.conf missing: the rotation cannot be read
    (tmp_path / "etc/logrotate.conf").unlink()
    r = _log004(pf, tmp_path, {})
    assert r.status == Status.error and "/etc/logrotate.conf" in r.reason, r
    # a rule file that cannot be read
    _etc(tmp_path, {"/etc/logrotate.conf": DEBIAN_LOGROTATE})
    (tmp_path / "etc/logrotate.d/broken").mkdir(parents=True)
    r = _log004(pf, tmp_path, {})
    assert r.status == Status.error and "logrotate.d" in r.reason, r


APT_SIM = """NOTE: This is only a simulation!
Reading package lists...
Inst curl [7.88.1-10+deb12u5] (7.88.1-10+deb12u8 Debian-Security:12/stable-security [amd64])
Inst tzdata [2024a-0+deb12u1] (2025b-0+deb12u1 Debian:12.11/stable [all])
Conf curl (7.88.1-10+deb12u8 Debian-Security:12/stable-security [amd64])
"""


def _upd(pf, tmp_path, stamps, sim):
    return _run("DCOPS-UPD-001", _ctx(pf, tmp_path, {"date +%s": stamps, "apt-get -s": sim}))


def test_upd001_pending_security_updates_from_apts_data(pf, tmp_path):
    now = 1_800_000_000
    fresh = Out(0, f"{now}\n{now - 3600} /var/lib/apt/lists/deb.debian.org_debian-security_dists_bookworm-security_InRelease\n")
    r = _upd(pf, tmp_path, fresh, Out(0, APT_SIM))
    assert r.status == Status.failed and "1 security update(s) pending: curl" in r.reason, r
    assert r.evidence["pending_other"] == 1 and r.evidence["lists_age_days"] == 0.04
    quiet = Out(0, APT_SIM.replace("Inst curl", "#").replace("Conf curl", "#"))
    assert _upd(pf, tmp_path, fresh, quiet).status == Status.passed
    # stale lists: nothing pending proves nothing (a pending update still fails)
    stale = Out(0, f"{now}\n{now - 30 * 86400} /var/lib/apt/lists/x_InRelease\n")
    r = _upd(pf, tmp_path, stale, quiet)
    assert r.status == Status.not_assessed and "30 days ago" in r.reason, r
    assert _upd(pf, tmp_path, stale, Out(0, APT_SIM)).status == Status.failed
    # no lists at all: not assessed, and apt-get is not run (it could show nothing)
    r = _upd(pf, tmp_path, Out(0, f"{now}\n"), Out(100, "", "E: apt-get must not run"))
    assert r.status == Status.not_assessed and "no package lists" in r.reason, r


def test_upd001_apt_unreadable_is_an_error(pf, tmp_path):
    now = 1_800_000_000
    fresh = Out(0, f"{now}\n{now} /var/lib/apt/lists/x_InRelease\n")
    r = _upd(pf, tmp_path, fresh, Out(100, "", "E: Malformed entry 1 in list file /etc/apt/sources.list.d/x.list"))
    assert r.status == Status.error and "Malformed entry" in r.reason, r
    r = _upd(pf, tmp_path, Out(1, "", "stat: cannot stat"), Out(0, APT_SIM))
    assert r.status == Status.error, r


def _run_both_ways(cmds: list[str], tmp_path) -> tuple[list, list]:
    """Each command through RUN_COMMAND_PY's run() and through /bin/sh -c, on this machine."""
    script = tmp_path / "run.py"
    script.write_text("import json\n" + E.RUN_COMMAND_PY
                      + "print(json.dumps([[rc, o.decode(), e.decode()] for rc, o, e in map(run, sys.argv[1:])]))\n")
    import json

    ours = json.loads(subprocess.run(["python3", "-I", str(script), *cmds], capture_output=True, text=True, check=True).stdout)
    sh = [[p.returncode, p.stdout, p.stderr] for p in
          (subprocess.run(["/bin/sh", "-c", c], capture_output=True, text=True, stdin=subprocess.DEVNULL) for c in cmds)]
    return ours, sh


def test_commands_without_shell_syntax_run_as_sh_would_run_them(tmp_path):
    """The collector and the checks' one-round-trip scripts run a plain command without a shell
    process: the same exit status, stdout and stderr as /bin/sh -c gives, for every kind of command
    the controls send (plain words, quotes, pipes, loops, redirections, an assignment first, a
    missing program, a failing one)."""
    (tmp_path / "a b").write_text("x\n")
    cmds = ["echo one two", "printf %s,%s a b", "ls /nonexistent-dcops", "cat -- /etc/hostname",
            f"stat -c '%n' {tmp_path}/'a b'", "echo a | tr a b", "for f in 1 2; do echo $f; done",
            "X=1 printenv X", "echo $HOME", "true && echo yes", "echo a > /dev/null", "false",
            "/nonexistent-dcops/prog --x", "nonexistent-dcops-prog", "/usr/bin/printf '%s|' '' 'a  b' x'y'z", "/bin/echo 'it'\\''s'",
            "awk -F: '($1 == \"root\") {print $1}' /etc/passwd", "/bin/echo -f='${P} $x\\n'", "echo 'unterminated",
            "echo  two-spaces", "echo trailing ", "'echo' quoted-program"]
    ours, sh = _run_both_ways(cmds, tmp_path)
    for c, o, s in zip(cmds, ours, sh):
        assert o[:2] == s[:2], c
        assert (o[2] == "") == (s[2] == ""), (c, o, s)
    assert ours[13][0] == 127 and "nonexistent-dcops-prog: not found" in ours[13][2]
    assert ours[14][1] == "|a  b|xyz|" and ours[17][1] == "-f=${P} $x\\n\n"
    ns: dict = {}
    exec(E.RUN_COMMAND_PY, ns)  # which ones go without a shell: plain words only
    simple = [c for c in cmds if ns["_simple"](c)]
    assert simple == ["ls /nonexistent-dcops", "cat -- /etc/hostname",  # not echo, printf: the shell's own
                      f"stat -c '%n' {tmp_path}/'a b'", "false", "/nonexistent-dcops/prog --x", "nonexistent-dcops-prog",
                      "/usr/bin/printf '%s|' '' 'a  b' x'y'z",  # a backslash outside quotes: the shell's
                      "awk -F: '($1 == \"root\") {print $1}' /etc/passwd", "/bin/echo -f='${P} $x\\n'"]


def test_one_round_trip_scripts_answer_each_command_in_order_length_prefixed(tmp_path):
    """The checks' root script (H._PREFETCH_PY), run as the host runs it (python3 -IS, each command
    one argument): one record per command, in order, each with the status and output /bin/sh -c
    gives, bytes kept as they are (binary output, a newline-only output, an empty one)."""
    import shlex

    (tmp_path / "bin").write_bytes(bytes(range(256)))
    cmds = ["echo one two", f"cat -- {tmp_path}/bin", "printf '\\n'", "true", "ls /nonexistent-dcops",
            "echo out; echo err >&2; exit 3", "nonexistent-dcops-prog", "echo 'Nguyễn Văn A'"]
    p = subprocess.run(f"python3 -IS -c {shlex.quote(H._PREFETCH_PY)} " + " ".join(map(shlex.quote, cmds)),
                       shell=True, capture_output=True, check=True)
    rows = E.read_frames(p.stdout)
    assert len(rows) == len(cmds)
    for c, (key, rc, out, err) in zip(cmds, rows):
        sh = subprocess.run(["/bin/sh", "-c", c], capture_output=True, stdin=subprocess.DEVNULL)
        assert (rc, out) == (sh.returncode, sh.stdout), c
        assert (err == b"") == (sh.stderr == b""), (c, err, sh.stderr)
    assert rows[1][2] == bytes(range(256)) and rows[2][2] == b"\n" and rows[3][2] == b""
    assert rows[5][1:] == (3, b"out\n", b"err\n")
    with pytest.raises(ValueError, match="cut short"):
        E.read_frames(p.stdout[:-1])
    with pytest.raises(ValueError, match="not a dcops evidence answer"):
        E.read_frames(b'{"a": [0, "", ""]}')


def test_the_collector_answers_each_of_its_commands_and_old_collectors_are_still_read(pf, tmp_path):
    """The rendered evidence collector (as a file, run by its #! line) answers every command of
    E.evidence_commands by name; an answer in the JSON that collectors rendered before is still
    read the same; anything else is no answer (None), never an empty pass."""
    import base64
    import json

    script = tmp_path / "collect-evidence"
    script.write_text(E.collector_script(pf))
    script.chmod(0o755)
    out = subprocess.run([str(script)], capture_output=True, check=True).stdout
    answers = H._collector_answers(out)
    assert answers is not None and set(answers) == set(E.evidence_commands(pf))
    for c, (rc, o, e) in answers.items():
        sh = subprocess.run(["/bin/sh", "-c", c], capture_output=True, stdin=subprocess.DEVNULL, cwd="/",
                            env={"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "LANG": "C.UTF-8", "LC_ALL": "C.UTF-8"})
        assert rc == sh.returncode, c
    old = json.dumps({c: [rc, base64.b64encode(o).decode(), base64.b64encode(e).decode()] for c, (rc, o, e) in answers.items()})
    assert H._collector_answers(old.encode()) == answers
    assert H._collector_answers(b"sudo: a password is required\n") is None
    assert subprocess.run([str(script), "x"], capture_output=True).returncode != 0  # no arguments taken
