"""Time the WAN rollout at scale on the lab: ``python -m infra.wan.bench --sites 200``.

For each engine, on fresh hosts (the lab's WAN hosts are started for it and removed after):
a full apply, then a no-change re-apply (which must report zero changes). The province is
the lab province scaled to ``--sites`` sites (:func:`infra.lab.topology.scaled_province`),
written to the bench lab's directory so that ``dcops wan apply --province`` reads it.
Prints a table and writes JSON (``--out``). Needs root, like the lab.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

import yaml

from ..lab import hosts as lab_hosts
from ..lab.topology import scaled_province
from ..paths import REPO, lab_dir
from ..validate import load_province


def _apply(name: str, province: Path, engine: str, out: Path, forks: int) -> dict:
    t0 = time.monotonic()
    p = subprocess.run(
        [str(Path(sys.executable).parent / "dcops"), "wan", "apply", "--name", name, "--province", str(province),
         "--engine", engine, "--forks", str(forks), "--json", str(out)],
        capture_output=True, text=True, cwd=REPO,
    )
    wall = time.monotonic() - t0
    data = json.loads(out.read_text()) if out.exists() else {}
    out.with_suffix(".log").write_text(p.stdout + p.stderr)
    bad = {h: v["detail"] for h, v in data.get("hosts", {}).items() if v["status"] in ("failed", "unreachable")}
    reasons: dict[str, int] = {}
    for why in bad.values():
        reasons[why[:150]] = reasons.get(why[:150], 0) + 1
    for why, n in sorted(reasons.items(), key=lambda x: -x[1])[:8]:
        print(f"    {n} host(s): {why}", flush=True)
    tail = "\n".join(p.stdout.splitlines()[-3:])
    print(f"  {engine}: exit {p.returncode}, {wall:.1f}s, {data.get('counts')}\n{tail}", flush=True)
    if p.returncode != 0:
        print(p.stderr[-3000:], file=sys.stderr)
    return {"exit": p.returncode, "seconds": round(wall, 1), "counts": data.get("counts"), "timings": data.get("timings"),
            "failures": reasons}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sites", type=int, default=200)
    ap.add_argument("--engines", default="pyinfra,ansible")
    ap.add_argument("--keep", action="store_true", help="leave the last engine's hosts running")
    ap.add_argument("--name", default="bench")
    ap.add_argument("--forks", type=int, default=50)
    ap.add_argument("--province", default=str(REPO / "stacks" / "province-lab.yaml"))
    ap.add_argument("--out", default=None)
    ap.add_argument("--workdir", default=None, help="province file and per-run JSON (default /tmp/dcops-bench-<name>)")
    a = ap.parse_args(argv)

    model = scaled_province(load_province(a.province), a.sites)
    d = Path(a.workdir or f"/tmp/dcops-bench-{a.name}")
    d.mkdir(parents=True, exist_ok=True)
    pfile = d / f"province-{a.sites}.yaml"
    pfile.write_text(yaml.safe_dump(model.model_dump(mode="json", exclude_defaults=False), allow_unicode=True, sort_keys=False))
    load_province(pfile)  # the file dcops will read validates
    results: dict = {"sites": a.sites, "engines": {}}
    for engine in a.engines.split(","):
        print(f"[bench] {engine}: starting {a.sites} sites + gateway", flush=True)
        t0 = time.monotonic()
        lab_hosts.up(model, a.name, sites=None, progress=lambda m: print("  " + m, flush=True))
        lay = json.loads((lab_dir(a.name) / "state.json").read_text())["values"]["hosts.layout"]
        r = {"hosts_up_seconds": round(time.monotonic() - t0, 1), "memory_per_host_mib": lay.get("memory_per_host_mib")}
        try:
            r["full"] = _apply(a.name, pfile, engine, d / f"bench-{engine}-full.json", a.forks)
            r["again"] = _apply(a.name, pfile, engine, d / f"bench-{engine}-again.json", a.forks)
        finally:
            if not (a.keep and engine == a.engines.split(",")[-1]):
                lab_hosts.down(a.name, progress=lambda m: None)
            shutil.rmtree(lab_dir(a.name) / "wan", ignore_errors=True)
        results["engines"][engine] = r
    print(json.dumps(results, indent=1))
    print(f"\n{'engine':<9} {'full apply':>11} {'no-change':>10} {'MiB/host':>9}")
    for e, r in results["engines"].items():
        print(f"{e:<9} {r['full']['seconds']:>10.1f}s {r['again']['seconds']:>9.1f}s {r['memory_per_host_mib']!s:>9}")
    if a.out:
        Path(a.out).write_text(json.dumps(results, indent=1) + "\n")
    ok = all(r["full"]["exit"] == 0 and r["again"]["exit"] == 0 and (r["again"]["counts"] or {}).get("changed") == 0
             for r in results["engines"].values())
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
