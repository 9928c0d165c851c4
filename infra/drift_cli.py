"""``dcops drift -s STACK``: has anything drifted since the last run? One report, exit codes for alerting.

Three looks, each the same command an operator would run by hand, on the stack's environment:

1. the clusters: ``pulumi preview --refresh --json`` (what changed out of band: objects whose live
   state no longer matches the province file, objects deleted by hand);
2. the WAN hosts: ``dcops wan apply --check --json`` (which hosts drifted, and how: the changes the
   rollout would make, per part and item);
3. the controls: ``dcops check`` (all of them), compared with the previous drift run's results:
   which controls changed status since then.

Writes ``<out>/drift.json`` (and a timestamped copy), ``drift.md`` (a plain-text report for mail or a
ticket), keeps the check results as the baseline of the next run. Exit codes, for a timer and an
alerting system: 0 nothing drifted and nothing got worse; 1 drift found (or a control got worse);
2 bad input; 3 the environment could not be used (nothing could be looked at).
"""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Optional

import typer

from .cli_common import EXIT_BAD_INPUT, EXIT_ENV, EXIT_FAILED, EXIT_OK, ConfigFileOpt, StackOpt, err, out, stack_or_exit

VN = dt.timezone(dt.timedelta(hours=7), "ICT")
_WORSE = {"pass": 0, "skipped": 0, "not_assessed": 1, "insufficient_data": 1, "waived": 1, "error": 2, "fail": 3}


def _dcops(argv: list[str], timeout: float) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "infra.cli", *argv], capture_output=True, text=True, timeout=timeout,
                          stdin=subprocess.DEVNULL, env={**os.environ, "DCOPS_NETNS_REEXEC": ""})


def cluster_drift(st) -> dict[str, Any]:
    """``pulumi preview --refresh --json``: every resource whose live state differs from the program."""
    from .pulumi_env import PulumiError, ensure_stack_for, pulumi, stack_cli_args

    try:
        ensure_stack_for(st)
        cp = pulumi(["preview", "--refresh", "--json", "--non-interactive", "--diff", *stack_cli_args(st)], st,
                    capture=True, check=False, timeout=1800)
    except (PulumiError, OSError, subprocess.TimeoutExpired) as e:
        return {"status": "error", "reason": f"pulumi preview --refresh: {str(e).splitlines()[0]}"}
    try:
        doc = json.loads(cp.stdout or "{}")
    except ValueError:
        return {"status": "error", "reason": f"pulumi preview exited {cp.returncode}: {(cp.stderr or cp.stdout)[-500:]}"}
    if cp.returncode != 0 and not doc.get("steps"):
        return {"status": "error", "reason": f"pulumi preview exited {cp.returncode}: {(cp.stderr or '')[-500:]}"}
    changed = changed_resources(doc)
    return {"status": "drift" if changed else "clean", "changed": changed,
            "summary": doc.get("changeSummary") or {}}


def changed_resources(doc: dict) -> list[dict[str, Any]]:
    """From ``pulumi preview --json``: every object (not components, not providers) whose step is
    not ``same``, with the fields its detailed diff names."""
    changed = []
    for s in doc.get("steps") or []:
        op = s.get("op")
        if op in ("same", "read", "refresh", None):  # refresh steps read the live state; changes follow as update, create, delete
            continue
        urn = s.get("urn", "")
        parts = urn.split("::")
        own_type = parts[2].split("$")[-1] if len(parts) > 3 else ""
        if own_type.startswith(("dcops:index:", "pulumi:pulumi:Stack", "pulumi:providers:")):
            continue  # components and providers carry no live state of their own
        keys = sorted((s.get("detailedDiff") or {}).keys()) or list(s.get("diffReasons") or [])
        x: dict[str, Any] = {"resource": parts[-1], "op": op, "fields": keys[:40]}
        # An object the last `pulumi up` created or updated but that never became ready (a
        # Deployment whose pods are not ready) keeps that as initErrors in its state: pulumi
        # updates it again, though no field differs. Say so, with the provider's words.
        errs = [str(e) for e in ((s.get("oldState") or {}).get("initErrors") or (s.get("newState") or {}).get("initErrors") or [])]
        if errs and not keys:
            x["reason"] = "not ready after the last pulumi up: " + " ".join(errs[0].split())[:400]
        changed.append(x)
    return changed


def host_drift(st, workdir: Path) -> dict[str, Any]:
    """``dcops wan apply --check``: the hosts whose state differs from the rendered one."""
    js = workdir / "wan-check.json"
    js.unlink(missing_ok=True)
    p = _dcops(["wan", "apply", "-s", st.name, "--config-file", str(st.config_file), "--check", "--no-diffs",
                "--json", str(js)], timeout=3600)
    if p.returncode in (EXIT_BAD_INPUT, EXIT_ENV) or not js.exists():
        return {"status": "error", "reason": f"dcops wan apply --check exited {p.returncode}: {(p.stderr or p.stdout)[-500:]}"}
    return host_verdict(json.loads(js.read_text()))


NOT_LOOKED = ("unreachable", "failed")  # wan apply --check could not read these hosts' state


def host_verdict(data: dict) -> dict[str, Any]:
    """The look at the hosts from ``wan apply --check --json``: the hosts that drifted (their
    changes), apart from the hosts it could not read (unreachable, or the check failed there),
    which are not "drift" but "not looked at", with the reason. Status: drift when a host
    drifted; error when none did but some could not be read; clean otherwise."""
    hosts = data.get("hosts") or {}
    drifted = {h: v for h, v in hosts.items() if v.get("status") not in ("unchanged", *NOT_LOOKED)}
    unread = {h: v for h, v in hosts.items() if v.get("status") in NOT_LOOKED}
    status = "drift" if drifted else "error" if unread else "clean"
    doc: dict[str, Any] = {"status": status, "hosts": drifted, "not_looked_at": unread, "counts": data.get("counts") or {}}
    if unread:
        doc["reason"] = (f"could not read {len(unread)} of {len(hosts)} host(s) "
                         f"({', '.join(sorted({v.get('status', '?') for v in unread.values()}))})")
    return doc


def control_changes(st, workdir: Path) -> dict[str, Any]:
    """``dcops check`` now, against the previous drift run's results (kept in the work dir)."""
    cur = workdir / "check-latest.json"
    prev = workdir / "check-baseline.json"
    cur.unlink(missing_ok=True)
    p = _dcops(["check", "-s", st.name, "--config-file", str(st.config_file), "--quiet", "--output", str(cur)],
               timeout=3600)
    if p.returncode in (EXIT_BAD_INPUT, EXIT_ENV) or not cur.exists():
        return {"status": "error", "reason": f"dcops check exited {p.returncode}: {(p.stderr or p.stdout)[-500:]}"}
    now = {(r["control"], r["target"]): r for r in json.loads(cur.read_text())["results"]}
    had_baseline = prev.exists()
    changes, worse = [], 0
    if had_baseline:
        before = {(r["control"], r["target"]): r for r in json.loads(prev.read_text())["results"]}
        for key in sorted(set(now) | set(before)):
            a, b = before.get(key), now.get(key)
            sa, sb = (a or {}).get("status", "absent"), (b or {}).get("status", "absent")
            if sa != sb:
                got_worse = _WORSE.get(sb, 2) > _WORSE.get(sa, 0)
                worse += got_worse
                changes.append({"control": key[0], "target": key[1], "was": sa, "now": sb, "worse": got_worse,
                                "reason": (b or {}).get("reason", "")})
    summary = json.loads(cur.read_text()).get("summary") or {}
    cur.replace(prev)  # the baseline of the next run
    status = "baseline" if not had_baseline else "worse" if worse else "changed" if changes else "clean"
    return {"status": status, "changes": changes, "summary": summary}


def _markdown(doc: dict) -> str:
    L = [f"# dcops drift: stack {doc['stack']} ({doc['environment']}), {doc['time_local']}", "",
         f"Verdict: **{doc['verdict']}** (exit {doc['exit']})", ""]
    c = doc["clusters"]
    L += ["## Clusters (pulumi preview --refresh)", ""]
    if c["status"] == "error":
        L.append(f"Could not look: {c['reason']}")
    elif not c.get("changed"):
        L.append("Nothing changed out of band.")
    for x in c.get("changed", []):
        L.append(f"- {x['op']} {x['resource']}" + (f" (fields: {', '.join(x['fields'])})" if x["fields"] else "")
                 + (f": {x['reason']}" if x.get("reason") else ""))
    h = doc["hosts"]
    L += ["", "## WAN hosts (wan apply --check)", ""]
    if h["status"] == "error":
        L.append(f"Could not look: {h['reason']}")
    elif not h.get("hosts"):
        L.append("Every host is as rendered.")
    for host, v in (h.get("hosts") or {}).items():
        L.append(f"- {host}: {v['status']}" + (f": {'; '.join(v['changes'][:12])}" if v.get("changes") else "")
                 + (f" ({v['detail']})" if v.get("detail") else ""))
    if h.get("not_looked_at"):
        L += ["", f"Not looked at ({len(h['not_looked_at'])}): their state could not be read, so they are not called clean:"]
        for host, v in h["not_looked_at"].items():
            L.append(f"- {host}: {v.get('status')}" + (f" ({v['detail']})" if v.get("detail") else ""))
    k = doc["controls"]
    L += ["", "## Controls (since the last drift run)", ""]
    if k["status"] == "error":
        L.append(f"Could not look: {k['reason']}")
    elif k["status"] == "baseline":
        L.append("First run: these results are the baseline of the next one.")
    elif not k.get("changes"):
        L.append("No control changed status.")
    for x in k.get("changes", []):
        L.append(f"- {x['control']} on {x['target']}: {x['was']} -> {x['now']}" + (" (worse)" if x["worse"] else "")
                 + (f": {x['reason']}" if x.get("reason") else ""))
    return "\n".join(L) + "\n"


def drift(
    stack: Optional[str] = StackOpt,
    config_file: Optional[Path] = ConfigFileOpt,
    out_dir: Path = typer.Option(Path("out/drift"), "--out", help="where drift.json and drift.md go"),
    skip: list[str] = typer.Option([], "--skip", help="clusters, hosts or controls: leave that look out"),
) -> None:
    """Has anything drifted since the last run? Clusters, WAN hosts and controls, one report.

    \b
    1. clusters: pulumi preview --refresh (objects changed or deleted out of band);
    2. WAN hosts: dcops wan apply --check (which hosts drifted, and how);
    3. controls: dcops check, compared with the previous drift run (which changed status).

    Writes <out>/drift.json (+ a timestamped copy) and drift.md. Run it daily with the systemd
    units in deploy/systemd/ (dcops-drift.timer). Exit codes, for alerting: 0 nothing drifted
    and no control got worse; 1 drift found or a control got worse; 2 bad input; 3 the
    environment could not be used for any of the three looks.
    """
    bad = set(skip) - {"clusters", "hosts", "controls"}
    if bad:
        err.print(f"error: --skip: unknown look(s) {', '.join(sorted(bad))} (clusters, hosts, controls)", markup=False)
        raise typer.Exit(EXIT_BAD_INPUT)
    st = stack_or_exit(stack, config_file)
    workdir = st.work_dir / "drift"
    workdir.mkdir(parents=True, exist_ok=True, mode=0o700)
    t0 = time.monotonic()
    say = lambda m: out.print(f"[{time.monotonic() - t0:6.1f}s] {m}", markup=False)  # noqa: E731
    skipped = {"status": "skipped", "reason": "--skip"}
    say(f"drift of stack '{st.name}' ({st.env.kind})")
    clusters = skipped if "clusters" in skip else cluster_drift(st)
    say(f"clusters: {clusters['status']}" + (f" ({len(clusters.get('changed', []))} resource(s))" if clusters.get("changed") else ""))
    hosts = skipped if "hosts" in skip else host_drift(st, workdir)
    say(f"hosts: {hosts['status']}" + (f" ({len(hosts.get('hosts', {}))} host(s))" if hosts.get("hosts") else "")
        + (f"; not looked at: {len(hosts['not_looked_at'])} host(s)" if hosts.get("not_looked_at") else ""))
    controls = skipped if "controls" in skip else control_changes(st, workdir)
    say(f"controls: {controls['status']}" + (f" ({len(controls.get('changes', []))} change(s))" if controls.get("changes") else ""))
    looks = [x for x in (clusters, hosts, controls) if x["status"] != "skipped"]
    if looks and all(x["status"] == "error" for x in looks):
        code, verdict = EXIT_ENV, "could not look"
    elif any(x["status"] in ("drift", "worse") for x in looks):
        code, verdict = EXIT_FAILED, "drift found"
    elif any(x["status"] == "error" for x in looks):
        code, verdict = EXIT_FAILED, "partly looked (an error)"
    else:
        code, verdict = EXIT_OK, "no drift"
    now = dt.datetime.now(VN)
    doc = {"stack": st.name, "environment": st.env.kind, "time": now.isoformat(timespec="seconds"),
           "time_local": now.strftime("%Y-%m-%d %H:%M (UTC+7, Asia/Ho_Chi_Minh)"),
           "verdict": verdict, "exit": code, "seconds": round(time.monotonic() - t0, 1),
           "clusters": clusters, "hosts": hosts, "controls": controls}
    from .redact import redact  # the one redaction of dcops

    doc = redact(doc)
    out_dir.mkdir(parents=True, exist_ok=True)
    text = json.dumps(doc, indent=1, ensure_ascii=False) + "\n"
    (out_dir / "drift.json").write_text(text)
    (out_dir / f"drift-{now.strftime('%Y%m%dT%H%M%S')}.json").write_text(text)
    (out_dir / "drift.md").write_text(_markdown(doc))
    say(f"{verdict}: {out_dir / 'drift.json'}, {out_dir / 'drift.md'}")
    raise typer.Exit(code)
