"""The generated Prometheus configuration: promtool accepts it, and
`promtool test rules` unit tests show which burn-rate alerts fire when.

Every test renders the files from the lab province into a temp dir and runs
Debian's promtool (scripts/install-system installs it).
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from infra.render import prometheus as P
from infra.validate import load_province

REPO = Path(__file__).resolve().parent.parent
PROVINCE = REPO / "stacks" / "province-lab.yaml"


def promtool() -> str:
    p = shutil.which("promtool")
    if not p:
        pytest.fail("promtool is not installed: run scripts/install-system (Debian package 'prometheus')")
    return p


@pytest.fixture(scope="module")
def pf():
    return load_province(PROVINCE)


@pytest.fixture()
def rendered(pf, tmp_path):
    return P.render(pf, tmp_path)


def test_promtool_check_rules_and_config(rendered):
    r = subprocess.run([promtool(), "check", "rules", str(rendered["recording"]), str(rendered["alerts"])], capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr
    r = subprocess.run([promtool(), "check", "config", str(rendered["prometheus"])], capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr


def test_scrape_config_covers_every_platform_and_site(pf):
    cfg = P.scrape_config(pf)
    jobs = {j["job_name"]: j for j in cfg["scrape_configs"]}
    plat = {sc["labels"]["platform"]: sc["targets"][0] for sc in jobs[P.JOB_PLATFORM]["static_configs"]}
    # each platform in its first port's protocol: https on a TLS port, with the https_2xx module
    scheme = {p.id: "https" if p.ports[0].scheme == "https" else "http" for p in pf.platforms}
    assert set(scheme.values()) == {"http", "https"}
    assert plat == {p.id: f"{scheme[p.id]}://{p.address}:{p.ports[0].port}/healthz" for p in pf.platforms}
    module = {sc["labels"]["platform"]: sc["labels"].get("__param_module") for sc in jobs[P.JOB_PLATFORM]["static_configs"]}
    assert module == {p: ("https_2xx" if s == "https" else "http_2xx") for p, s in scheme.items()}
    sites = {sc["labels"]["site"]: sc["targets"][0] for sc in jobs[P.JOB_SITE]["static_configs"]}
    assert sites == {s.id: s.tunnel_address for s in pf.wan.sites}
    nodes = {sc["labels"]["site"]: sc["targets"][0] for sc in jobs[P.JOB_NODE]["static_configs"]}
    assert nodes == {s.id: f"{s.tunnel_address}:9100" for s in pf.wan.sites}
    assert "params" not in jobs[P.JOB_PLATFORM]  # Prometheus would put a job's params over the targets' modules
    assert jobs[P.JOB_SITE]["params"] == {"module": ["icmp"]}


def test_recording_rules_have_every_window(pf):
    names = {r["record"] for g in P.recording_rules(pf)["groups"] for r in g["rules"]}
    for w in (*P.SHORT_WINDOWS, "3d"):
        for kind, sli in (("platform", "availability"), ("platform", "latency"), ("site", "availability")):
            assert P.rec(kind, sli, w) in names


def test_alert_thresholds_follow_each_slo(pf):
    rules = [r for g in P.alert_rules(pf)["groups"] for r in g["rules"] if r["alert"] == "DcopsPlatformAvailabilityBurn"]
    for p in pf.platforms:
        mine = [r for r in rules if r["labels"]["platform"] == p.id]
        assert len(mine) == 3
        for r in mine:
            factor = float(r["labels"]["burn_rate"])
            assert f"> {P._num(factor * (1 - p.slo.availability / 100))}" in r["expr"]
    got = {(r["labels"]["severity"], r["labels"]["burn_rate"], r["labels"]["long_window"], r["labels"]["short_window"]) for r in rules}
    assert got == {("page", "14.4", "1h", "5m"), ("page", "6", "6h", "30m"), ("ticket", "1", "3d", "6h")}


# ----------------------------------------------------------------- promtool test rules


def _series(values: list[float]) -> str:
    return " ".join(P._num(v) for v in values)


def _expected(pf, alert: str, which: list[tuple[str, str]], ident: dict[str, str], extra: dict[str, str] | None = None) -> list[dict]:
    """exp_alerts for the rendered rules named ``alert`` whose (severity, long window) is in ``which``."""
    out = []
    for g in P.alert_rules(pf)["groups"]:
        for r in g["rules"]:
            if r["alert"] != alert or (r["labels"]["severity"], r["labels"]["long_window"]) not in which:
                continue
            if any(r["labels"].get(k, v) != v for k, v in ident.items()):
                continue
            labels = {**r["labels"], **ident, **(extra or {})}
            ann = {k: v.replace("{{ $labels.site }}", labels.get("site", "")) for k, v in r["annotations"].items()}
            out.append({"exp_labels": labels, "exp_annotations": ann})
    assert out, f"no rendered rule {alert} for {which} {ident}"
    return out


PAGE_1H, PAGE_6H, TICKET = ("page", "1h"), ("page", "6h"), ("ticket", "3d")


def _run_promtool_test(rendered, tests: list[dict]) -> None:
    doc = {
        "rule_files": [str(rendered["recording"]), str(rendered["alerts"])],
        "evaluation_interval": "1m",
        "tests": tests,
    }
    f = rendered["recording"].parent.parent / "tests.yml"
    f.write_text(yaml.safe_dump(doc, sort_keys=False, width=100000), encoding="utf-8")
    r = subprocess.run([promtool(), "test", "rules", str(f)], capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "SUCCESS" in r.stdout


def _platform(pid: str, values: list[float], metric: str = "probe_success") -> dict:
    return {"series": f'{metric}{{job="{P.JOB_PLATFORM}",platform="{pid}",instance="http://x/healthz"}}', "values": _series(values)}


def test_fast_burn_pages_then_short_window_resets(pf, rendered):
    """dvc (99.9%): 60 good minutes then a 20-minute outage. All three windows
    fire at the end of the outage; 6 minutes after recovery the 14.4x page has
    reset (its 5m short window is clean) while the 6x page and the ticket hold."""
    dvc = [1.0] * 60 + [0.0] * 20 + [1.0] * 20
    healthy = [1.0] * 100
    others = [_platform(p.id, healthy) for p in pf.platforms if p.id != "dvc"]
    _run_promtool_test(
        rendered,
        [
            {
                "interval": "1m",
                "input_series": [_platform("dvc", dvc), *others],
                "alert_rule_test": [
                    {"eval_time": "50m", "alertname": "DcopsPlatformAvailabilityBurn", "exp_alerts": []},
                    {
                        "eval_time": "79m",
                        "alertname": "DcopsPlatformAvailabilityBurn",
                        "exp_alerts": _expected(pf, "DcopsPlatformAvailabilityBurn", [PAGE_1H, PAGE_6H, TICKET], {"platform": "dvc"}),
                    },
                    {
                        "eval_time": "86m",
                        "alertname": "DcopsPlatformAvailabilityBurn",
                        "exp_alerts": _expected(pf, "DcopsPlatformAvailabilityBurn", [PAGE_6H, TICKET], {"platform": "dvc"}),
                    },
                    {"eval_time": "79m", "alertname": "DcopsPlatformLatencyBurn", "exp_alerts": []},
                ],
            }
        ],
    )


def test_slow_burn_tickets_without_paging(pf, rendered):
    """ioc (99.0%): one failed probe in 25 (4% errors) for 8 hours burns the
    budget at 4x: above 1x (ticket) but below 6x and 14.4x (no page)."""
    n = 8 * 60
    ioc = [0.0 if i % 25 == 24 else 1.0 for i in range(n)]
    _run_promtool_test(
        rendered,
        [
            {
                "interval": "1m",
                "input_series": [_platform("ioc", ioc)],
                "alert_rule_test": [
                    {
                        "eval_time": f"{n - 1}m",
                        "alertname": "DcopsPlatformAvailabilityBurn",
                        "exp_alerts": _expected(pf, "DcopsPlatformAvailabilityBurn", [TICKET], {"platform": "ioc"}),
                    }
                ],
            }
        ],
    )


def test_latency_burn_is_separate_from_availability(pf, rendered):
    """motcua answers every probe, but takes 1.5 s (threshold 0.8 s) for 20 minutes."""
    ok = [1.0] * 80
    dur = [0.1] * 60 + [1.5] * 20
    _run_promtool_test(
        rendered,
        [
            {
                "interval": "1m",
                "input_series": [_platform("motcua", ok), _platform("motcua", dur, "probe_duration_seconds")],
                "alert_rule_test": [
                    {"eval_time": "79m", "alertname": "DcopsPlatformAvailabilityBurn", "exp_alerts": []},
                    {
                        "eval_time": "79m",
                        "alertname": "DcopsPlatformLatencyBurn",
                        "exp_alerts": _expected(pf, "DcopsPlatformLatencyBurn", [PAGE_1H, PAGE_6H, TICKET], {"platform": "motcua"}),
                    },
                ],
                "promql_expr_test": [
                    {"expr": P.rec("platform", "latency", "5m"), "eval_time": "79m", "exp_samples": [{"labels": P.rec("platform", "latency", "5m") + '{platform="motcua"}', "value": 0}]},
                    {"expr": P.rec("platform", "latency", "5m"), "eval_time": "50m", "exp_samples": [{"labels": P.rec("platform", "latency", "5m") + '{platform="motcua"}', "value": 1}]},
                ],
            }
        ],
    )


def test_site_link_burn(pf, rendered):
    s = pf.site_by_id["so-tc"]
    vals = [1.0] * 60 + [0.0] * 20
    _run_promtool_test(
        rendered,
        [
            {
                "interval": "1m",
                "input_series": [
                    {"series": f'probe_success{{job="{P.JOB_SITE}",site="so-tc",tier="{s.tier}",instance="{s.tunnel_address}"}}', "values": _series(vals)},
                    {"series": f'probe_success{{job="{P.JOB_SITE}",site="so-xd",tier="department",instance="x"}}', "values": _series([1.0] * 80)},
                ],
                "alert_rule_test": [
                    {
                        "eval_time": "79m",
                        "alertname": "DcopsSiteLinkBurn",
                        "exp_alerts": _expected(pf, "DcopsSiteLinkBurn", [PAGE_1H, PAGE_6H, TICKET], {}, {"site": "so-tc", "tier": s.tier}),
                    }
                ],
                "promql_expr_test": [
                    # the SLI itself: 20 bad of the 61 samples in [18m, 79m]
                    {
                        "expr": f'{P.rec("site", "availability", "1h")}{{site="so-tc"}}',
                        "eval_time": "79m",
                        "exp_samples": [{"labels": f'{P.rec("site", "availability", "1h")}{{site="so-tc",tier="{s.tier}"}}', "value": 41 / 61}],
                    }
                ],
            }
        ],
    )


def test_missing_probe_series_alerts(pf, rendered):
    """No probe result for a platform for 10 minutes is itself an alert (its SLA cannot be computed)."""
    present = [_platform(p.id, [1.0] * 30) for p in pf.platforms if p.id != "lris"]
    _run_promtool_test(
        rendered,
        [
            {
                "interval": "1m",
                "input_series": present,
                "alert_rule_test": [
                    {
                        "eval_time": "20m",
                        "alertname": "DcopsProbeSeriesMissing",
                        "exp_alerts": [
                            {
                                "exp_labels": {"severity": "ticket", "platform": "lris", "job": P.JOB_PLATFORM},
                                "exp_annotations": {"summary": "No probe results for platform lris: its SLA cannot be computed"},
                            }
                        ],
                    },
                    {"eval_time": "20m", "alertname": "DcopsPlatformAvailabilityBurn", "exp_alerts": []},
                ],
            }
        ],
    )


def test_hourly_ratios_for_the_sla(pf, rendered):
    """The hourly 1h ratios (group dcops-sli-hourly, read by the 30-day SLA in checks/sla.py):
    lgsp (threshold 0.5 s) answers fast for an hour, is down for the next two, then answers but
    slowly every other probe.  The hourly latency ratio records nothing for the hours without a
    successful probe (instead of 0/0 = NaN, which would make every 30-day average over them NaN);
    the availability ratio records 0 for them.  (The range [t - 1h, t] holds 61 one-minute probes.)"""
    ok = [1.0] * 61 + [0.0] * 120 + [1.0] * 60
    dur = [0.1] * 61 + [0.01] * 120 + [0.1, 2.0] * 30
    hourly_lat, hourly_av = P.hourly_rec("platform", "latency"), P.hourly_rec("platform", "availability")

    def at(expr: str, t: str, value: float | None, scale: int = 1) -> dict:
        q = f'round({expr}{{platform="lgsp"}} * {scale})'
        return {"expr": q, "eval_time": t, "exp_samples": [] if value is None else [{"labels": '{platform="lgsp"}', "value": value}]}

    _run_promtool_test(
        rendered,
        [
            {
                "interval": "1m",
                "input_series": [_platform("lgsp", ok), _platform("lgsp", dur, "probe_duration_seconds")],
                "promql_expr_test": [
                    at(hourly_lat, "1h", 1), at(hourly_av, "1h", 1),
                    at(hourly_lat, "3h", None), at(hourly_av, "3h", 0),
                    # 30 fast of 60 answered (of 59 when the booleans the ratio reads lag a step: rule groups are
                    # evaluated in no set order); 60 of 61 probes answered
                    at(hourly_lat, "4h", 5, 10), at(hourly_av, "4h", 60, 61),
                ],
            }
        ],
    )


def test_blackbox_https_module_verifies_with_the_province_ca(pf):
    mods = P.blackbox_config(pf=pf)["modules"]
    tls = mods["https_2xx"]["http"]
    assert tls["tls_config"] == {"ca_file": pf.datacenter.certificates.ca_file, "insecure_skip_verify": False}
    assert tls["fail_if_not_ssl"] is True and "tls_config" not in mods["http_2xx"]["http"]
    # a province with no TLS platform has no https module and needs no CA
    plain = pf.model_copy(update={"platforms": [p for p in pf.platforms if p.ports[0].scheme != "https"]})
    assert "https_2xx" not in P.blackbox_config(pf=plain)["modules"]


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_real_blackbox_probe_fails_on_a_certificate_of_another_ca(pf, tmp_path):
    """blackbox_exporter with the rendered https_2xx module, on loopback: a front end whose
    certificate the province's CA signed passes; one signed by another CA, and one that speaks plain
    HTTP on the TLS port, fail. The province's CA is a fresh one here (ca_file points at it)."""
    import sys
    import time
    import urllib.request

    from checks.promrun import blackbox_bin
    from infra.lab import hosts, pki
    from infra.lab.topology import Frontend
    from infra.model import Certificates

    good_dir, other_dir = tmp_path / "province", tmp_path / "other"
    ca = pki.province_ca(good_dir)
    pki.province_ca(other_dir, cn="another CA")
    dc = pf.datacenter.model_copy(update={"certificates": Certificates(ca_file=str(ca.cert))})
    cfg = tmp_path / "blackbox.yml"
    cfg.write_text(yaml.safe_dump(P.blackbox_config(pf=pf.model_copy(update={"datacenter": dc}))))
    ports = {k: _free_port() for k in ("good", "other", "plain", "bb")}
    servers = {
        "good": hosts.frontend_argv(Frontend("good", "127.0.0.1", "", ((ports["good"], "TCP"),), (ports["good"],)),
                                    pki.issue_server(good_dir, "good", ["127.0.0.1"])),
        "other": hosts.frontend_argv(Frontend("other", "127.0.0.1", "", ((ports["other"], "TCP"),), (ports["other"],)),
                                     pki.issue_server(other_dir, "other", ["127.0.0.1"])),
        "plain": hosts.frontend_argv(Frontend("plain", "127.0.0.1", "", ((ports["plain"], "TCP"),))),
    }
    procs = [subprocess.Popen(argv, stdout=subprocess.DEVNULL) for argv in servers.values()]
    procs.append(subprocess.Popen([blackbox_bin(), f"--config.file={cfg}", f"--web.listen-address=127.0.0.1:{ports['bb']}"],
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
    try:
        def probe(name: str) -> str:
            url = (f"http://127.0.0.1:{ports['bb']}/probe?module=https_2xx&debug=true"
                   f"&target=https://127.0.0.1:{ports[name]}/healthz")
            deadline = time.monotonic() + 20
            while True:
                try:
                    with urllib.request.urlopen(url, timeout=10) as r:
                        return r.read().decode()
                except OSError:
                    if time.monotonic() > deadline:
                        raise
                    time.sleep(0.2)

        def success(out: str) -> float:
            return float(next(ln.split()[-1] for ln in out.splitlines() if ln.startswith("probe_success ")))

        import socket

        deadline = time.monotonic() + 20
        for name in servers:  # every front end listens before it is probed
            while True:
                try:
                    socket.create_connection(("127.0.0.1", ports[name]), timeout=2).close()
                    break
                except OSError:
                    assert time.monotonic() < deadline, f"front end {name} does not listen"
                    time.sleep(0.1)
        good = probe("good")
        assert success(good) == 1, good[-2000:]
        other = probe("other")
        assert success(other) == 0 and "certificate signed by unknown authority" in other, other[-2000:]
        plain = probe("plain")
        assert success(plain) == 0, plain[-2000:]
    finally:
        for p in procs:
            p.terminate()
            p.wait(10)


RECORDER = r"""
import http.server, sys
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        print(self.path, flush=True)
        b = b"probe_success 1\n"
        self.send_response(200); self.send_header("Content-Length", str(len(b))); self.end_headers(); self.wfile.write(b)
    def log_message(self, *a):
        pass
http.server.HTTPServer(("127.0.0.1", int(sys.argv[1])), H).serve_forever()
"""


def test_real_prometheus_asks_each_platform_with_its_module(pf, tmp_path):
    """Prometheus itself (Debian's), with the rendered scrape configuration, asks blackbox (here a
    recorder on loopback) for each platform with its own module: https_2xx for a TLS platform."""
    import sys
    import time
    import urllib.parse

    from checks.promrun import prometheus_bin

    bb, web = _free_port(), _free_port()
    cfg = P.scrape_config(pf, blackbox=f"127.0.0.1:{bb}", scrape_interval="1s", evaluation_interval="1s", rule_files=())
    cfg["scrape_configs"] = [j for j in cfg["scrape_configs"] if j["job_name"] == P.JOB_PLATFORM]
    (tmp_path / "prometheus.yml").write_text(yaml.safe_dump(cfg))
    log = tmp_path / "asked.log"
    with open(log, "w") as out:
        rec = subprocess.Popen([sys.executable, "-c", RECORDER, str(bb)], stdout=out)
    prom = subprocess.Popen([prometheus_bin(), f"--config.file={tmp_path / 'prometheus.yml'}",
                             f"--storage.tsdb.path={tmp_path / 'data'}", f"--web.listen-address=127.0.0.1:{web}"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    want = {P.probe_url(p): P.probe_module(p) for p in pf.platforms}
    try:
        deadline = time.monotonic() + 60
        while True:
            asked = {}
            for ln in log.read_text().splitlines():
                q = urllib.parse.parse_qs(urllib.parse.urlparse(ln).query)
                asked[q["target"][0]] = q["module"]
            if set(asked) >= set(want) or time.monotonic() > deadline:
                break
            time.sleep(0.5)
        assert asked == {t: [m] for t, m in want.items()}, asked
        assert "https_2xx" in want.values() and "http_2xx" in want.values()
    finally:
        for p in (prom, rec):
            p.terminate()
            p.wait(10)


def test_a_big_lab_scrapes_node_exporter_less_often_and_promtool_accepts_it(pf, tmp_path):
    """The lab's hosts share one machine: past 37 sites the node_exporter job is scraped less
    often (about 2.5 scrapes a second in all, at most every 5 minutes); the other jobs keep the
    global interval, and a province's own configuration (no node interval given) is unchanged.
    The lab also stores only a few node_exporter series (NODE_KEEP)."""
    from infra.lab.monitoring import duration_seconds, node_scrape_interval

    assert [node_scrape_interval(n) for n in (10, 37, 38, 225, 700, 5000)] == ["15s", "15s", "16s", "90s", "280s", "300s"]
    assert [duration_seconds(t) for t in ("15s", "1m", "1m30s", "2h", "1d", "500ms")] == [15, 60, 90, 7200, 86400, 0.5]
    for bad in ("", "15", "s", "1x", "m1", "1s1m"):
        with pytest.raises(ValueError, match="not a Prometheus duration"):
            duration_seconds(bad)
    jobs = {j["job_name"]: j for j in P.scrape_config(pf)["scrape_configs"]}
    assert "scrape_interval" not in jobs[P.JOB_NODE]
    assert "metric_relabel_configs" not in jobs[P.JOB_NODE]  # a province stores every node series
    from infra.lab.monitoring import NODE_KEEP

    files = P.render(pf, tmp_path, node_scrape_interval=node_scrape_interval(700), node_keep=NODE_KEEP)
    import yaml

    cfg = yaml.safe_load(files["prometheus"].read_text())
    jobs = {j["job_name"]: j for j in cfg["scrape_configs"]}
    assert jobs[P.JOB_NODE]["scrape_interval"] == "280s" and cfg["global"]["scrape_interval"] == "15s"
    (keep,) = jobs[P.JOB_NODE]["metric_relabel_configs"]
    assert keep["action"] == "keep" and keep["source_labels"] == ["__name__"]
    import re

    assert re.fullmatch(keep["regex"], "node_exporter_build_info") and not re.fullmatch(keep["regex"], "node_cpu_seconds_total")
    assert all("metric_relabel_configs" not in j for name, j in jobs.items() if name != P.JOB_NODE)
    assert all("scrape_interval" not in j for name, j in jobs.items() if name != P.JOB_NODE)
    r = subprocess.run([promtool(), "check", "config", str(files["prometheus"])], capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr
