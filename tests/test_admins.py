"""Named administrators, sudo rules, MFA and idle sessions (issues 13 and 16), without a lab.

- the province file: ``wan.administrators`` validated with file, field and fix (POSIX user names,
  reserved names, SSH public keys parsed, FIDO keys for ``mfa: fido``, duplicates);
- the rendering: the sudoers file passes ``visudo -c -f`` and never grants NOPASSWD: ALL, the
  sshd drop-in passes ``sshd -t`` and ``sshd -T`` shows the idle timeouts from the province file,
  the evidence collector is a valid program answering exactly :func:`E.evidence_commands`;
- the controls' verdicts (DCOPS-USR-005, SSH-006, USR-001, USR-004, SSH-012) on recorded command
  outputs, and the audit account's collector path (a root command it did not answer is an error).
"""

from __future__ import annotations

import ast
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from checks.catalog import catalog
from checks.controls import host as H
from checks.result import Status
from infra.paths import REPO
from infra.render import endpoint as E
from infra.validate import check_text, load_province

from conftest import Out

PROVINCE = REPO / "stacks" / "province-lab.yaml"
KEY_A = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAINvSPZLfcRPel+OKpPNUT2PmUkMNK71N/+R8qSgRrB3P nguyenvana@lab"
KEY_B = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOdubvesUN9+uHmXaBYHiiVr54WzwSyuG/ARySwa1gbt tranthib@lab"


@pytest.fixture(scope="module")
def pf():
    return load_province(PROVINCE)


def _with_admins(block: str) -> str:
    text = PROVINCE.read_text(encoding="utf-8")
    start = text.index("  administrators:\n")
    end = text.index("  admin_idle_timeout_s:")
    return text[:start] + block + text[end:]


def _problems(text: str) -> list[str]:
    model, problems = check_text(text)
    return [f"{p.path}: {p.message} -- fix: {p.fix}" for p in problems] if problems else []


def _tool(name: str) -> str:
    path = shutil.which(name) or (f"/usr/sbin/{name}" if Path(f"/usr/sbin/{name}").exists() else None)
    assert path, f"{name} is missing: run scripts/install-system (it installs sudo and openssh-server for their config checkers)"
    return path


# --------------------------------------------------------------------------- the province file


def test_lab_file_names_administrators(pf):
    assert [a.name for a in pf.wan.administrators] == ["nguyenvana", "tranthib"]
    assert {a.mfa for a in pf.wan.administrators} == {"totp"}
    assert pf.wan.admin_idle_timeout_s == 900


@pytest.mark.parametrize("block, where, words", [
    ("  administrators:\n    - {name: Root, full_name: A, ssh_keys: ['" + KEY_A + "']}\n",
     "wan.administrators[0].name", "not a POSIX user name"),
    ("  administrators:\n    - {name: dcops, full_name: A, ssh_keys: ['" + KEY_A + "']}\n",
     "wan.administrators[0].name", "system or dcops account"),
    ("  administrators:\n    - {name: ann, full_name: \"A\\nB\", ssh_keys: ['" + KEY_A + "']}\n",
     "wan.administrators[0].full_name", "U+000A"),
    ("  administrators:\n    - {name: ann, full_name: A, ssh_keys: ['command=\"sh\" " + KEY_A + "']}\n",
     "wan.administrators[0].ssh_keys[0]", "not an SSH public key"),
    ("  administrators:\n    - {name: ann, full_name: A, ssh_keys: ['" + KEY_A.replace("ssh-ed25519", "ssh-rsa", 1) + "']}\n",
     "wan.administrators[0].ssh_keys[0]", "its data is 'ssh-ed25519'"),
    ("  administrators:\n    - {name: ann, full_name: A, mfa: fido, ssh_keys: ['" + KEY_A + "']}\n",
     "wan.administrators[0]", "not a security-key (sk-) key"),
    ("  administrators:\n    - {name: ann, full_name: A, ssh_keys: ['" + KEY_A + "']}\n"
     "    - {name: ann, full_name: B, ssh_keys: ['" + KEY_B + "']}\n",
     "wan.administrators[1].name", "duplicate administrator name"),
    ("  administrators:\n    - {name: ann, full_name: A, ssh_keys: ['" + KEY_A + "']}\n"
     "    - {name: bob, full_name: B, ssh_keys: ['" + KEY_A + "']}\n",
     "wan.administrators[1].ssh_keys[0]", "duplicate SSH key"),
])
def test_bad_administrators_are_refused_with_the_fix(block, where, words):
    found = _problems(_with_admins(block))
    assert any(p.startswith(where + ":") and words in p and "-- fix: " in p for p in found), found


def test_idle_timeout_range():
    text = _with_admins("  administrators: []\n").replace("admin_idle_timeout_s: 900", "admin_idle_timeout_s: 0")
    assert any(p.startswith("wan.admin_idle_timeout_s:") for p in _problems(text))


# --------------------------------------------------------------------------- the rendering


def _site(pf):
    return E.render_site(pf, pf.wan.sites[0].id, {E.GATEWAY: "A" * 43 + "="})


def test_sudoers_parses_with_visudo_and_grants_no_nopasswd_all(pf, tmp_path):
    text = E.sudoers_text(pf)
    f = tmp_path / "sudoers"
    f.write_text(text)
    f.chmod(0o440)
    r = subprocess.run([_tool("visudo"), "-c", "-f", str(f)], capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr
    rules = H._sudo_lines(text)
    assert f"%{E.ADMINS_GROUP} ALL=(ALL:ALL) ALL" in rules
    assert f'{E.AUDIT_USER} ALL=(root) NOPASSWD: {E.COLLECTOR} ""' in rules
    assert not [r for r in rules if "NOPASSWD" in r and r.rstrip().endswith("ALL")]
    # a broken file is refused by the same check (the Ansible role copies sudoers through it)
    f.write_text(text + "dcops ALL=(ALL\n")
    assert subprocess.run([_tool("visudo"), "-c", "-f", str(f)], capture_output=True).returncode != 0


def test_sshd_dropin_is_valid_and_times_idle_sessions_out(pf, tmp_path):
    model = pf.model_copy(update={"wan": pf.wan.model_copy(update={"admin_idle_timeout_s": 600})})
    drop = tmp_path / "d"
    drop.mkdir()
    (drop / "50.conf").write_text(_site(model).file(E.SSHD_DROPIN).content)
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(tmp_path / "hk")], check=True)
    main = tmp_path / "sshd_config"
    main.write_text(f"Include {drop}/*.conf\nHostKey {tmp_path / 'hk'}\nUsePAM yes\n")
    sshd = _tool("sshd")
    os.makedirs("/run/sshd", mode=0o755, exist_ok=True)  # sshd -t wants its privilege-separation directory (a fresh boot has none)
    r = subprocess.run([sshd, "-t", "-f", str(main)], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    conf = H._sshd_conf(subprocess.run([sshd, "-T", "-f", str(main)], capture_output=True, text=True, check=True).stdout, "sshd -T")
    assert conf["channeltimeout"] == ["session:*=600s session=600s"] and conf["unusedconnectiontimeout"] == ["600"]
    assert conf["authenticationmethods"] == ["publickey"]  # everyone else: key only
    assert sorted(conf["allowusers"]) == sorted(["dcops", "dcops-audit", "nguyenvana", "tranthib"])
    text = (drop / "50.conf").read_text()
    assert f"Match Group {E.ADMINS_GROUP}\n    AuthenticationMethods publickey,keyboard-interactive\n" in text


def test_admins_part_files(pf):
    part = _site(pf).part("admins")
    paths = {f.path: f for f in part.files}
    assert paths[E.SUDOERS_DCOPS].mode == "0440" and paths[E.COLLECTOR].mode == "0755"
    assert {f"{E.ADMIN_KEYS_DIR}/nguyenvana.keys", f"{E.ADMIN_KEYS_DIR}/tranthib.keys"} <= set(paths)
    assert KEY_A in paths[f"{E.ADMIN_KEYS_DIR}/nguyenvana.keys"].content
    assert all(f.owner == "root" for f in part.files)  # nobody edits their own keys
    pam = paths[E.PAM_SSHD].content
    active = [l for l in pam.splitlines() if l.strip() and not l.startswith("#")]
    assert "auth       required     pam_google_authenticator.so" in active and not [l for l in active if "nullok" in l]
    assert "@include common-auth" not in pam  # the second factor is the code, not the (absent) password
    assert [c.name for c in part.converge] == ["administrator accounts", "administrators' TOTP secrets"]


def test_collector_answers_exactly_the_root_commands(pf):
    script = E.collector_script(pf)
    tree = ast.parse(script)
    cmds = next(ast.literal_eval(n.value) for n in tree.body if isinstance(n, ast.Assign) and n.targets[0].id == "COMMANDS")
    assert cmds == E.evidence_commands(pf)
    assert script.startswith("#!/usr/bin/python3 -IS\n") and "takes no arguments" in script
    # the commands the host controls read through their helpers are among them
    for c in ("/usr/sbin/sshd -T", "nft -nn list ruleset", "ss -H -tulnp", E.SUDOERS_EVIDENCE, "wg show wg0 public-key"):
        assert c in cmds
    assert E.sshd_match_command(pf, "nguyenvana") in cmds


# --------------------------------------------------------------------------- the controls' verdicts


class RecordedOnly:
    """A host that runs nothing: every answer the control reads is recorded in the cache."""

    def run(self, cmd):  # nothing else may be run: every answer is recorded
        raise AssertionError(f"not recorded: {cmd}")


def _ctx(pf, answers: dict[str, Out], audit: bool = False) -> H.HostCtx:
    t = H.Target(pf.wan.sites[0].id, "endpoint", "172.30.0.10", "10.200.0.10", pf.province.security_level)
    x = H.HostCtx(t, pf, RecordedOnly(), audit_user=E.AUDIT_USER if audit else None)
    x.cache.update(answers)
    return x


SSHD_T = "port 22\nusepam yes\nauthenticationmethods publickey\nallowusers {users}\nchannelTimeout {ct}\nunusedconnectiontimeout {uc}\n"
SUDOERS = ("\0/etc/sudoers\0Defaults env_reset\n%sudo ALL=(ALL:ALL) ALL\n@includedir /etc/sudoers.d\n"
           "\0/etc/sudoers.d/README\0# nothing\n"
           f"\0/etc/sudoers.d/50-dcops\0{{rules}}")


def _verdict(cid, pf, answers, audit=False):
    return H.CONTROLS[cid](catalog().get(cid), _ctx(pf, answers, audit))


def test_usr005_nopasswd_all_fails_and_the_collector_rule_passes(pf):
    good = SUDOERS.format(rules=E.sudoers_text(pf))
    assert _verdict("DCOPS-USR-005", pf, {E.SUDOERS_EVIDENCE: Out(0, good)}).status == Status.passed
    for bad in ("dcops ALL=(ALL) NOPASSWD:ALL\n", "dcops ALL=(ALL:ALL) \\\n   NOPASSWD: /bin/ls, ALL\n",
                "Defaults:dcops !authenticate\n", "%dcops-admins ALL=(ALL) SETENV: NOPASSWD: ALL\n"):
        r = _verdict("DCOPS-USR-005", pf, {E.SUDOERS_EVIDENCE: Out(0, SUDOERS.format(rules=bad))})
        assert r.status == Status.failed and "without authentication" in r.reason, (bad, r)
    # files sudo skips in an includedir (a dot in the name) are not rules
    r = _verdict("DCOPS-USR-005", pf, {E.SUDOERS_EVIDENCE: Out(0, good + "\0/etc/sudoers.d/x.bak\0dcops ALL=(ALL) NOPASSWD: ALL\n")})
    assert r.status == Status.passed
    # unreadable evidence is an error, never a pass
    with pytest.raises(H.EvidenceUnreadable, match="sudo rules could not be read"):  # check_host: an error result
        _verdict("DCOPS-USR-005", pf, {E.SUDOERS_EVIDENCE: Out(0, "")})


def test_ssh006_reads_channel_and_unused_connection_timeouts(pf):
    users = " ".join(E.ssh_allow_users(pf))
    # OpenSSH 9.2 (Debian 12) names session channels session:shell / session:command: "session" alone
    # (the name from 9.5 on) ends nothing there
    cases = [("session:*=900s session=900s", "900", Status.passed), ("session:*=15m", "600", Status.passed),
             ("*=10m", "600", Status.passed), ("session=900s", "900", Status.failed),
             ("session:shell=900s", "900", Status.failed), ("session:*=0", "900", Status.failed),
             ("agent-connection=60s", "900", Status.failed), ("session:*=1h", "900", Status.failed),
             ("session:*=900s", "none", Status.failed)]
    for ct, uc, want in cases:
        sshd = SSHD_T.format(users=users, ct=ct, uc=uc).replace("channelTimeout", "channeltimeout")
        r = _verdict("DCOPS-SSH-006", pf, {"/usr/sbin/sshd -T": Out(0, sshd)})
        assert r.status == want, (ct, uc, r)


def test_ssh005_and_usr001_follow_the_province_file(pf):
    users = " ".join(E.ssh_allow_users(pf))
    sshd = SSHD_T.format(users=users, ct="session:*=900s", uc="900")
    assert _verdict("DCOPS-SSH-005", pf, {"/usr/sbin/sshd -T": Out(0, sshd)}).status == Status.passed
    assert _verdict("DCOPS-SSH-005", pf, {"/usr/sbin/sshd -T": Out(0, sshd.replace("allowusers ", "allowusers shared "))}).status == Status.failed
    passwd = ("root:x:0:0:root:/root:/bin/bash\ndaemon:x:1:1::/:/usr/sbin/nologin\ndcops:x:1000:1000::/home/dcops:/bin/bash\n"
              "dcops-audit:x:1001:1001::/home/dcops-audit:/bin/sh\nnguyenvana:x:1002:1002::/home/nguyenvana:/bin/bash\n"
              "tranthib:x:1003:1003::/home/tranthib:/bin/bash\n")
    group = Out(0, "dcops-admins:x:999:nguyenvana,tranthib\n")
    ok = {"getent passwd": Out(0, passwd), f"getent group {E.ADMINS_GROUP}": group}
    assert _verdict("DCOPS-USR-001", pf, ok).status == Status.passed
    r = _verdict("DCOPS-USR-001", pf, {**ok, "getent passwd": Out(0, passwd + "admin:x:1004:1004::/home/admin:/bin/bash\n")})
    assert r.status == Status.failed and "admin" in r.reason
    r = _verdict("DCOPS-USR-001", pf, {**ok, f"getent group {E.ADMINS_GROUP}": Out(0, "dcops-admins:x:999:nguyenvana,dcops\n")})
    assert r.status == Status.failed and "not named in the province file: dcops" in r.reason
    # USR-004: each administrator's account, group and keys
    keys = {f"cat -- {E.ADMIN_KEYS_DIR}/{a.name}.keys": Out(0, "# c\n" + "\n".join(a.ssh_keys) + "\n") for a in pf.wan.administrators}
    assert _verdict("DCOPS-USR-004", pf, {**ok, **keys}).status == Status.passed
    wrong = {**keys, f"cat -- {E.ADMIN_KEYS_DIR}/tranthib.keys": Out(0, KEY_A + "\n")}
    r = _verdict("DCOPS-USR-004", pf, {**ok, **wrong})
    assert r.status == Status.failed and "tranthib: keys differ" in r.reason
    none = pf.model_copy(update={"wan": pf.wan.model_copy(update={"administrators": []})})
    r = _verdict("DCOPS-USR-004", none, ok)
    assert r.status == Status.failed and "shared account" in r.reason


def test_ssh012_mfa_per_administrator(pf):
    pam = "auth       required     pam_google_authenticator.so\n@include common-account\n"
    base = {
        E.totp_evidence_command(pf): Out(0, "nguyenvana nguyenvana 400 90\ntranthib tranthib 400 90\n"),
        f"set -u; for f in {E.PAM_SSHD}; do printf '\\0%s\\0' \"$f\"; cat -- \"$f\" || exit 1; done; for f in "
        "/nonexistent-dcops-glob; do [ -e \"$f\" ] || continue; printf '\\0%s\\0' \"$f\"; cat -- \"$f\" || exit 1; done":
            Out(0, f"\0{E.PAM_SSHD}\0{pam}"),
        "ls /lib/*/security/pam_google_authenticator.so /usr/lib/*/security/pam_google_authenticator.so 2>/dev/null":
            Out(0, "/lib/x86_64-linux-gnu/security/pam_google_authenticator.so\n"),
        "/usr/sbin/sshd -T": Out(0, "port 22\nusepam yes\n"),
    }
    mfa = "port 22\nauthenticationmethods publickey,keyboard-interactive\nkbdinteractiveauthentication yes\n"
    ok = {**base, **{E.sshd_match_command(pf, a.name): Out(0, mfa) for a in pf.wan.administrators}}
    assert _verdict("DCOPS-SSH-012", pf, ok).status == Status.passed
    r = _verdict("DCOPS-SSH-012", pf, {**ok, E.sshd_match_command(pf, "tranthib"): Out(0, "port 22\nauthenticationmethods publickey\n")})
    assert r.status == Status.failed and "tranthib: sshd accepts publickey" in r.reason
    nullok = {**ok, list(base)[1]: Out(0, f"\0{E.PAM_SSHD}\0" + pam.replace(".so\n", ".so nullok\n", 1))}
    r = _verdict("DCOPS-SSH-012", pf, nullok)
    assert r.status == Status.failed and "nullok" in r.reason
    r = _verdict("DCOPS-SSH-012", pf, {**ok, E.totp_evidence_command(pf): Out(0, "nguyenvana missing\ntranthib tranthib 400 90\n")})
    assert r.status == Status.failed and "nguyenvana: no usable TOTP secret" in r.reason


def test_audit_account_never_runs_a_root_command_itself(pf):
    """As the audit account, a root command the collector did not answer is an error with the
    reason: it is not run unprivileged (whose output could differ and pass)."""
    x = _ctx(pf, {}, audit=True)
    x.collector_error = "`sudo -n /usr/local/libexec/dcops/collect-evidence` as dcops-audit failed (rc 1): a password is required"
    with pytest.raises(H.EvidenceUnreadable, match="needs root, and the evidence collector did not answer"):
        x.run("nft -nn list ruleset")
    with pytest.raises(H.EvidenceUnreadable):  # a control reading it raises too: check_host makes that an error result
        _verdict("DCOPS-USR-005", pf, {}, audit=True)
