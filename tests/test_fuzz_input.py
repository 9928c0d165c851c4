"""Property-based test of hostile input (issue 13): Hypothesis puts hostile strings into every
free-text field of the lab province (and into the fields with a grammar of their own), then
either the validator refuses the file, or

- every generated endpoint file parses with its own tool (``nft -c -f``, ``sshd -t -f``,
  ``wg-quick strip``, ``chronyd -p -f``, ``rsyslogd -N1 -f``), and the Prometheus
  configuration with ``promtool check config``;
- a free-text value changes nothing but comment lines in those files (it is there only as a
  comment), nothing in the Prometheus files, and only the names' annotations of the
  Kubernetes objects.

The tools come from Debian packages (scripts/install-system); a missing one fails the test
with how to install it. Bounded: a fixed number of examples, no per-example deadline, the
tools run once per distinct file content.
"""

from __future__ import annotations

import base64
import copy
import hashlib
import json
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from infra.render import endpoint as E
from infra.render import k8s as K
from infra.render import prometheus as P
from infra.validate import check_text

REPO = Path(__file__).resolve().parent.parent
LAB = REPO / "stacks" / "province-lab.yaml"
BASE = yaml.safe_load(LAB.read_text(encoding="utf-8"))

TOOLS = {  # command -> Debian package
    "nft": "nftables",
    "sshd": "openssh-server",
    "wg-quick": "wireguard-tools",
    "chronyd": "chrony",
    "rsyslogd": "rsyslog",
    "promtool": "prometheus",
    "unshare": "util-linux",
    "ssh-keygen": "openssh-client",
}

# Hostile pieces: line breaks of every language, NUL, quotes, shell and template syntax,
# config-language specials, bidi and zero-width characters, confusables, a WireGuard section.
BREAKS = [  # each can end a line, or hide text, in some config language
    "\n", "\r\n", "\r", "\x00", "\t", "\x0b", "\x0c", "\x1b[31m", "\x85", "\u2028", "\u2029", "\\\n",
    "\u202e", "\u2066", "\u200b", "\ufeff", "\n[Interface]\nPreUp = touch /tmp/fuzz-pwned\n",
    "\nAllowedIPs = 0.0.0.0/0", "\ntable ip evil { }", "\nPermitRootLogin yes", "\nserver 203.0.113.9 iburst",
    "\n*.* /tmp/fuzz-log",
]
VISIBLE = [  # visible, so allowed in a name: they must stay inert where they land
    '"', "'", "\\", "$(id)", "`id`", ";", "&&", "|", "{{ 7*7 }}", "{% raw %}", "${HOME}", "%i", "%HOSTNAME%",
    "%$.x%", "#", "*/", "/*", "}", "{", "[Peer]", "[Interface]", "PreUp = id", "AllowedIPs = 0.0.0.0/0", "=",
    "Ѕở", "Тài", "ｓｏ", "ℌ", "Xã Hòa Bình", "ẞ", "İ", "🙂", "..", "/", "../../etc/passwd", "%2e%2e", "0.0.0.0/0",
    " ", "Sở Tài chính",
]
NASTY = BREAKS + VISIBLE

hostile = st.one_of(
    st.lists(st.one_of(st.sampled_from(NASTY), st.text(max_size=6)), min_size=1, max_size=6).map("".join),
    st.lists(st.sampled_from(VISIBLE), min_size=1, max_size=8).map("".join).map(str.strip).filter(bool),
    st.builds(lambda piece, n: piece * n, st.sampled_from(NASTY + ["A", "ấ"]), st.integers(20, 400)),
    st.text(min_size=1, max_size=40),
)


def _set(*path):
    def setter(d, v):
        cur = d
        for k in path[:-1]:
            cur = cur[k]
        cur[path[-1]] = v

    return setter


# Every free-text field: a value here may only ever be a comment or an annotation.
FREE_TEXT = {
    "province.name": _set("province", "name"),
    "province.name_en": _set("province", "name_en"),
    "datacenter.name": _set("datacenter", "name"),
    "datacenter.segments[5].name": _set("datacenter", "segments", 5, "name"),
    "datacenter.clusters[0].name": _set("datacenter", "clusters", 0, "name"),
    "datacenter.backup.target": _set("datacenter", "backup", "target"),
    "national_endpoints[0].name": _set("national_endpoints", 0, "name"),
    "national_endpoints[0].name_en": _set("national_endpoints", 0, "name_en"),
    "platforms[0].name": _set("platforms", 0, "name"),
    "platforms[0].name_en": _set("platforms", 0, "name_en"),
    "wan.tiers[0].name": _set("wan", "tiers", 0, "name"),
    "wan.tiers[0].name_en": _set("wan", "tiers", 0, "name_en"),
    "wan.hub.name": _set("wan", "hub", "name"),
    "wan.sites[0].name": _set("wan", "sites", 0, "name"),
    "wan.sites[5].name": _set("wan", "sites", 5, "name"),
}
# Fields with a grammar: hostile strings must be refused, or render files that still parse.
GRAMMAR = {
    "wan.sites[0].id": _set("wan", "sites", 0, "id"),
    "wan.tiers[0].id": _set("wan", "tiers", 0, "id"),
    "wan.sites[0].lan": _set("wan", "sites", 0, "lan"),
    "wan.sites[0].tunnel_address": _set("wan", "sites", 0, "tunnel_address"),
    "wan.hub.log_server": _set("wan", "hub", "log_server"),
    "wan.hub.ntp_server": _set("wan", "hub", "ntp_server"),
    "platforms[0].ports[0].name": _set("platforms", 0, "ports", 0, "name"),
    "platforms[0].storage[0].mount_path": _set("platforms", 0, "storage", 0, "mount_path"),
    "platforms[0].image": _set("platforms", 0, "image"),
    "platforms[0].kind": _set("platforms", 0, "kind"),
    "datacenter.backup.schedule": _set("datacenter", "backup", "schedule"),
    "datacenter.clusters[0].node_pools[0].taints[0].key": _set("datacenter", "clusters", 0, "node_pools", 0, "taints", 0, "key"),
    "datacenter.clusters[0].node_pools[0].taints[0].value": _set("datacenter", "clusters", 0, "node_pools", 0, "taints", 0, "value"),
    "province.code": _set("province", "code"),
}


def _keys(hosts: list[str]) -> dict[str, str]:
    return {h: base64.b64encode(hashlib.sha256(h.encode()).digest()).decode() for h in hosts}


def _config_lines(text: str) -> list[str]:
    return [ln for ln in text.splitlines() if not ln.lstrip().startswith("#")]


class Checkers:
    """Runs each file's own parser, once per distinct content."""

    def __init__(self, work: Path):
        self.work = work
        self.cache: dict[str, str | None] = {}
        self.tool = {}
        for cmd, pkg in TOOLS.items():
            path = shutil.which(cmd) or next((p for p in (f"/usr/sbin/{cmd}", f"/sbin/{cmd}") if os.access(p, os.X_OK)), None)
            if path is None:
                pytest.fail(f"{cmd} is missing: install the Debian package {pkg} (run scripts/install-system as root, "
                            f"or apt-get install {pkg})")
            self.tool[cmd] = path
        self.hostkey = work / "ssh_host_ed25519_key"
        subprocess.run([self.tool["ssh-keygen"], "-q", "-t", "ed25519", "-N", "", "-f", str(self.hostkey)], check=True)
        os.makedirs("/run/sshd", mode=0o755, exist_ok=True)  # sshd -t wants its privilege-separation directory

    def _run(self, argv: list[str], what: str) -> str | None:
        p = subprocess.run(argv, capture_output=True, text=True, timeout=60)
        return None if p.returncode == 0 else f"{what}: exit {p.returncode}: {(p.stderr or p.stdout)[-800:]}"

    def endpoint_file(self, path: str, content: str, extra: dict[str, str]) -> str | None:
        """None when the file parses with its tool, else why not. ``extra``: other files of
        the same endpoint the file refers to (the rsyslog senders table)."""
        key = hashlib.sha256((path + "\0" + content + json.dumps(extra, sort_keys=True)).encode()).hexdigest()
        if key in self.cache:
            return self.cache[key]
        d = Path(tempfile.mkdtemp(dir=self.work))
        f = d / Path(path).name
        f.write_text(content, encoding="utf-8")
        os.chmod(f, 0o600)
        why: str | None = None
        if path == E.NFT_CONF:
            why = self._run([self.tool["unshare"], "--net", "--", self.tool["nft"], "-c", "-f", str(f)], "nft -c -f")
        elif path == E.WG_CONF:
            why = self._run([self.tool["wg-quick"], "strip", str(f)], "wg-quick strip")
        elif path == E.SSHD_DROPIN:
            why = self._run([self.tool["sshd"], "-t", "-f", str(f), "-o", f"HostKey={self.hostkey}"], "sshd -t -f")
        elif path == E.CHRONY_CONF:
            why = self._run([self.tool["chronyd"], "-p", "-f", str(f)], "chronyd -p -f")
        elif path.startswith("/etc/rsyslog.d/") and path.endswith(".conf"):
            body = content
            for other, text in extra.items():  # the lookup table, at a path of this test's own
                local = d / Path(other).name
                local.write_text(text, encoding="utf-8")
                body = body.replace(other, str(local))
            f.write_text(body, encoding="utf-8")
            (d / "spool").mkdir()
            main = d / "rsyslog.conf"  # what /etc/rsyslog.conf gives a drop-in: a work directory
            main.write_text(f'global(workDirectory="{d / "spool"}")\ninclude(file="{f}")\n', encoding="utf-8")
            why = self._run([self.tool["rsyslogd"], "-N1", "-f", str(main)], "rsyslogd -N1")
        self.cache[key] = why
        return why

    def prometheus(self, out: Path) -> str | None:
        key = hashlib.sha256("".join(p.read_text() for p in sorted(out.rglob("*.yml"))).encode()).hexdigest()
        if key not in self.cache:
            self.cache[key] = self._run([self.tool["promtool"], "check", "config", str(out / "prometheus.yml")],
                                        "promtool check config")
        return self.cache[key]


@pytest.fixture(scope="module")
def checkers(tmp_path_factory):
    return Checkers(tmp_path_factory.mktemp("fuzz"))


def _render_all(model, tmp: Path) -> tuple[dict, Path, list]:
    eps = E.render(model, _keys(E.hosts(model)))
    out = Path(tempfile.mkdtemp(dir=tmp))
    P.render(model, out)
    objs = [o for _, o in K.iter_objects(model)]
    return eps, out, objs


@pytest.fixture(scope="module")
def baseline(checkers, tmp_path_factory):
    model, problems = check_text(yaml.safe_dump(BASE, allow_unicode=True, sort_keys=False))
    assert model is not None, problems
    eps, out, objs = _render_all(model, tmp_path_factory.mktemp("base"))
    _check_files(checkers, eps, out)
    return eps, {p.relative_to(out): p.read_text() for p in out.rglob("*.yml")}, objs


def _check_files(checkers: Checkers, eps: dict, prom: Path) -> None:
    bad = []
    for h, ep in eps.items():
        extra = {f.path: f.content for f in ep.files() if f.path == E.RSYSLOG_SENDERS}
        for f in ep.files():
            why = checkers.endpoint_file(f.path, f.content, extra)
            if why:
                bad.append(f"{h}:{f.path}: {why}")
    why = checkers.prometheus(prom)
    if why:
        bad.append(f"prometheus: {why}")
    assert not bad, "\n".join(bad)


def _strings(obj, path=""):
    if isinstance(obj, dict):
        for k, v in obj.items():
            yield from _strings(v, f"{path}.{k}")
    elif isinstance(obj, list):
        for i, v in enumerate(obj):
            yield from _strings(v, f"{path}[{i}]")
    elif isinstance(obj, str):
        yield path, obj


def test_baseline_files_parse(baseline):
    """The unmodified lab province: every file parses (the fuzz test compares against it)."""
    eps, prom, objs = baseline
    assert eps and prom and objs


@pytest.mark.timeout(300)
@settings(max_examples=100, deadline=None, derandomize=True, database=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture, HealthCheck.data_too_large])
@given(field=st.sampled_from(sorted(FREE_TEXT) + sorted(GRAMMAR)), value=hostile)
def test_hostile_value_is_refused_or_inert(checkers, baseline, tmp_path_factory, field, value):
    d = copy.deepcopy(BASE)
    (FREE_TEXT.get(field) or GRAMMAR[field])(d, value)
    model, problems = check_text(yaml.safe_dump(d, allow_unicode=True, sort_keys=False))
    if model is None:
        event("refused")
        assert problems, "refused, with the reasons"
        for p in problems:
            line = p.render("province.yaml")
            assert "\n" not in line and "\r" not in line and "\x00" not in line and p.fix
            assert len(line) < 2000, "a long value is cut in the message"
        return
    event("accepted: " + ("free text" if field in FREE_TEXT else "grammar field"))
    base_eps, base_prom, base_objs = baseline
    eps, prom, objs = _render_all(model, tmp_path_factory.getbasetemp())
    _check_files(checkers, eps, prom)
    if field not in FREE_TEXT:
        return
    # a free-text value: only comment lines differ in the endpoint files ...
    for h, ep in eps.items():
        for f in ep.files():
            want = base_eps[h].file(f.path).content
            assert _config_lines(f.content) == _config_lines(want), f"{field}={value!r} changed {h}:{f.path}"
    # ... nothing in the Prometheus files ...
    assert {p.relative_to(prom): p.read_text() for p in prom.rglob("*.yml")} == base_prom
    # ... and only the names' annotations of the Kubernetes objects
    changed = {path for a, b in zip(base_objs, objs) for (path, x), (_, y) in zip(_strings(a), _strings(b)) if x != y}
    assert len(objs) == len(base_objs)
    assert changed <= {f".metadata.annotations.{K.ANNOT_NAME}", f".metadata.annotations.{K.ANNOT_NAME_EN}"}, changed
