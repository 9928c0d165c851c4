"""Named administrators on real lab hosts: MFA, sudo, idle sessions, the audit account.

One small lab (the gateway and one site; lab name ``adm`` + 4 random characters) rolled out with
pyinfra (tests/test_checks_host.py rolls out with Ansible) from the lab province with one
administrator whose key this module makes, and an idle timeout of 60 s. Then, with the real
OpenSSH client from the management namespace:

- the administrator is refused with the key alone, and refused with the key and a wrong code;
- the key plus the TOTP code, computed here (RFC 6238) from the secret the rollout made on the
  host, logs in; sudo without authenticating is refused;
- an idle session of a live client is closed by the host (ChannelTimeout), not only a dead one;
- the audit account runs the evidence collector through sudo and nothing else, and the host
  controls of accounts and SSH pass through it;
- no sudo rule on the host grants NOPASSWD: ALL.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import random
import string
import struct
import subprocess
import time
from pathlib import Path

import pytest

from checks.result import Status
from conftest import dcops, lab_stack, write_lab_environment
from infra.paths import REPO
from infra.render import endpoint as E
from infra.validate import load_province

PROVINCE = REPO / "stacks" / "province-lab.yaml"
ADMIN = "labadmin"
IDLE_S = 60


def totp(secret_b32: str, at: float, step: int = 30, digits: int = 6) -> str:
    """RFC 6238 TOTP (HMAC-SHA1), what pam_google_authenticator checks."""
    key = base64.b32decode(secret_b32.upper() + "=" * (-len(secret_b32) % 8))
    mac = hmac.new(key, struct.pack(">Q", int(at // step)), hashlib.sha1).digest()
    off = mac[-1] & 0x0F
    return str((struct.unpack(">I", mac[off:off + 4])[0] & 0x7FFFFFFF) % 10 ** digits).zfill(digits)


def test_totp_matches_rfc6238_vectors():
    secret = base64.b32encode(b"12345678901234567890").decode()
    assert [totp(secret, t, digits=8) for t in (59, 1111111109, 1234567890)] == ["94287082", "07081804", "89005924"]


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    from infra.lab import hosts, netexec

    d = tmp_path_factory.mktemp("admins")
    key = d / "id_admin"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", f"{ADMIN}@test", "-f", str(key)], check=True)
    text = PROVINCE.read_text(encoding="utf-8")
    start, end = text.index("  administrators:\n"), text.index("  admin_idle_timeout_s:")
    block = (f"  administrators:\n    - name: {ADMIN}\n      full_name: Quản trị viên thử nghiệm\n"
             f"      ssh_keys: [\"{key.with_suffix('.pub').read_text().strip()}\"]\n      mfa: totp\n")
    text = text[:start] + block + text[end:].replace("admin_idle_timeout_s: 900", f"admin_idle_timeout_s: {IDLE_S}", 1)
    province = d / "province.yaml"
    province.write_text(text, encoding="utf-8")
    pf = load_province(province)
    name = "adm" + "".join(random.choices(string.ascii_lowercase + string.digits, k=4))
    lab = None
    try:
        hosts.up(pf, name, sites=1, progress=lambda m: None)
        write_lab_environment(name, pf, province)
        r = dcops("wan", "apply", *lab_stack(name), "--engine", "pyinfra")
        assert r.returncode == 0, f"wan apply failed ({r.returncode}):\n{r.stdout[-3000:]}\n{r.stderr[-2000:]}"
        site = next(h for h in netexec.layout(name)["ssh"] if h in pf.site_by_id)
        lab = {"name": name, "pf": pf, "site": site, "key": key, "dir": d, "used": set()}
        # the idle session of test_idle_administrator_session_is_closed starts now and stays silent
        # while the other tests run (its minute of idleness overlaps them; the test, last, collects it)
        secret = _secret(lab)
        code = _next_code(secret, lab["used"])
        lab["idle"] = (time.monotonic(), subprocess.Popen(
            _admin_ssh(lab, ["sleep", str(IDLE_S * 10)], code, askpass_name="askpass-idle"), stdin=subprocess.PIPE,
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True))
        yield lab
    finally:
        if lab is not None and lab["idle"][1].poll() is None:
            lab["idle"][1].kill()
            lab["idle"][1].communicate()
        r = dcops("lab", "down", "--name", name)
        assert r.returncode == 0, r.stdout + r.stderr


def _secret(lab) -> str:
    from infra.lab import netexec

    r = netexec.host_run(lab["name"], lab["site"], ["cat", f"/home/{ADMIN}/.google_authenticator"], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    return r.stdout.splitlines()[0].strip()


def _admin_ssh(lab, argv: list[str], code: str | None, askpass_name: str = "askpass") -> list[str]:
    """The OpenSSH client as the administrator, its key only; ``code`` answers the verification
    code prompt through SSH_ASKPASS (forced: no terminal here), None offers no second factor."""
    from infra.lab import netexec

    askpass = lab["dir"] / askpass_name
    askpass.write_text(f"#!/bin/sh\necho {code or ''}\n")
    askpass.chmod(0o700)
    opts = ["-l", ADMIN, "-i", str(lab["key"]), "-o", "IdentitiesOnly=yes", "-o", "BatchMode=no",
            "-o", "PreferredAuthentications=publickey,keyboard-interactive",
            "-o", f"KbdInteractiveAuthentication={'yes' if code else 'no'}", "-o", "NumberOfPasswordPrompts=1"]
    base = netexec.ssh_argv(lab["name"], lab["site"], argv)
    return netexec.mgmt_argv(lab["name"], ["env", f"SSH_ASKPASS={askpass}", "SSH_ASKPASS_REQUIRE=force", "DISPLAY=:0",
                                           base[0], *opts, *base[1:]])


def _next_code(secret: str, used: set[str]) -> str:
    """A code not used yet (pam_google_authenticator refuses a code twice: DISALLOW_REUSE)."""
    while True:
        c = totp(secret, time.time())
        if c not in used and (time.time() % 30) < 25:
            used.add(c)
            return c
        time.sleep(1)


@pytest.mark.lab
def test_administrator_needs_key_and_totp(lab):
    secret, used = _secret(lab), lab["used"]  # not the idle session's code (refused twice)
    r = subprocess.run(_admin_ssh(lab, ["id", "-un"], None), capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL)
    assert r.returncode != 0 and "Permission denied" in r.stderr, r.stderr
    r = subprocess.run(_admin_ssh(lab, ["id", "-un"], "000000" if totp(secret, time.time()) != "000000" else "111111"),
                       capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL)
    assert r.returncode != 0 and "Permission denied" in r.stderr, r.stderr
    r = subprocess.run(_admin_ssh(lab, ["sh", "-c", "id -un; id -nG; sudo -n true; echo sudo=$?"], _next_code(secret, used)),
                       capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL)
    assert r.returncode == 0, r.stderr
    lines = r.stdout.split()
    assert lines[0] == ADMIN and E.ADMINS_GROUP in lines and "sudo=1" in lines, r.stdout + r.stderr


@pytest.mark.lab
def test_audit_account_runs_only_the_collector_and_the_controls_pass(lab):
    from checks.controls import host as H
    from checks.netns import in_netns
    from infra import environment as EV
    from infra.environment_ssh import access
    from infra.lab import netexec
    from infra.lab.environment import config_path

    name, pf, site = lab["name"], lab["pf"], lab["site"]
    cfg = netexec.ssh_paths(name)["config"]
    addr = netexec.layout(name)["ssh"][site]

    def audit(*argv: str) -> subprocess.CompletedProcess:
        return netexec.mgmt_run(name, ["ssh", "-F", str(cfg), "-l", E.AUDIT_USER, addr, "--", *argv],
                                capture_output=True, text=True, timeout=60)

    assert audit("id", "-un").stdout.strip() == E.AUDIT_USER
    assert audit("sudo", "-n", "id").returncode != 0  # no other command as root
    assert audit("sudo", "-n", E.COLLECTOR, "x").returncode != 0  # not even the collector with an argument
    r = netexec.mgmt_run(name, ["ssh", "-F", str(cfg), "-l", E.AUDIT_USER, addr, "--", "sudo", "-n", E.COLLECTOR],
                         capture_output=True, timeout=60)  # bytes: length-prefixed answers
    assert r.returncode == 0, r.stderr
    answers = H._collector_answers(r.stdout)
    assert answers is not None and set(answers) == set(E.evidence_commands(pf)), r.stdout[:300]
    assert answers["/usr/sbin/sshd -T"][0] == 0
    # the controls, through the environment (wan.audit_user: the lab's dcops-audit)
    st = EV.load("lab", config_path(name))
    acc = access(st, pf)
    assert acc.audit_user == E.AUDIT_USER
    only = {"DCOPS-USR-001", "DCOPS-USR-004", "DCOPS-USR-005", "DCOPS-SSH-005", "DCOPS-SSH-006", "DCOPS-SSH-012"}
    res = in_netns(st.env.management_netns, H.check_hosts, acc, pf, names={site, E.GATEWAY}, only=only,
                   present=set(acc.addresses) & {site, E.GATEWAY})
    bad = [(r.control, r.target, r.status.value, r.reason) for r in res if r.status != Status.passed]
    assert not bad and len(res) == 2 * len(only), bad
    # no account keeps NOPASSWD: ALL (the image's rollout account included)
    r = netexec.host_run(name, site, ["sh", "-c", "cat /etc/sudoers /etc/sudoers.d/*"], capture_output=True, text=True)
    rules = H._sudo_lines(r.stdout)
    assert rules and not [l for l in rules if "NOPASSWD" in l and "ALL" in l.split("NOPASSWD", 1)[1]], rules


@pytest.mark.lab
def test_fw003_reads_an_ownerless_socket_again_through_the_collector(lab):
    """A UDP socket no process of the host owns (bound here from outside the host's PID namespace,
    as a kernel socket is, or a client's socket closing while ss reads /proc) makes FW-003 read the
    sockets a second time, as the audit account through the evidence collector; still there, the
    control fails and names it. Gone, the control passes."""
    from checks.controls import host as H
    from checks.netns import in_netns
    from infra import environment as EV
    from infra.environment_ssh import access
    from infra.lab import netexec
    from infra.lab.environment import config_path

    name, pf, site = lab["name"], lab["pf"], lab["site"]
    st = EV.load("lab", config_path(name))
    acc = access(st, pf)

    def fw003():
        res = in_netns(st.env.management_netns, H.check_hosts, acc, pf, names={site}, only={"DCOPS-FW-003"},
                       present={site})
        assert len(res) == 1, res
        return res[0]

    port = "41234"
    p = subprocess.Popen(["nsenter", "-t", str(netexec.container_pid(name, site)), "-n", "--", "python3", "-c",
                          "import socket, time\ns = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)\n"
                          f"s.bind(('0.0.0.0', {port}))\nprint('bound', flush=True)\ntime.sleep(300)"],
                         stdout=subprocess.PIPE, text=True)
    try:
        assert p.stdout.readline().strip() == "bound"
        r = fw003()
        assert r.status == Status.failed, (r.status, r.reason, r.evidence)
        assert f"udp 0.0.0.0:{port}" in r.evidence["unexpected"], r.evidence
        assert f"udp 0.0.0.0:{port}" in r.evidence["read_again"] and r.evidence["transient"] == [], r.evidence
    finally:
        p.kill()
        p.wait()
    r = fw003()
    assert r.status == Status.passed and "read_again" not in r.evidence, (r.status, r.reason, r.evidence)


@pytest.mark.lab
def test_idle_administrator_session_is_closed(lab):
    """A live client's session with no traffic ends after wan.admin_idle_timeout_s (ChannelTimeout).
    The session runs a silent ``sleep`` (no shell: TMOUT plays no part), the client stays connected.
    It was started by the lab fixture (key and TOTP code) and stayed silent while the module's other
    tests ran; this test, the module's last, waits for its end."""
    t0, p = lab["idle"]
    try:
        # the client stays alive and connected, the channel silent
        out, err = p.communicate(timeout=max(0.0, t0 + IDLE_S * 3 - time.monotonic()))
    except subprocess.TimeoutExpired:
        p.kill()
        out, err = p.communicate()
        pytest.fail(f"the idle session was still open after {IDLE_S * 3}s: {err[-500:]}")
    took = time.monotonic() - t0
    assert IDLE_S - 5 <= took <= IDLE_S * 3, (took, err[-500:])
    assert p.returncode != 0, (p.returncode, err[-500:])  # the server ended it: sleep would have exited 0
