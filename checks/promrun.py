"""Run Debian's Prometheus tools for dcops: a Prometheus server inside a
network namespace, and promtool's backfills.

Used by the lab's monitoring (``infra/lab/monitoring.py``) and by the SLA ground
truth test.  Every process runs with ``ip netns exec <ns>`` so that it can
only reach what that namespace reaches; callers record PIDs and end them by
PID.
"""

from __future__ import annotations

import shutil
import subprocess
import time
from pathlib import Path

import requests

from infra.paths import ToolMissing

from .netns import in_netns


def debian_tool(name: str, package: str) -> str:
    p = shutil.which(name)
    if not p:
        raise ToolMissing(f"'{name}' is not installed: run `scripts/install-system` (Debian package '{package}')")
    return p


def prometheus_bin() -> str:
    return debian_tool("prometheus", "prometheus")


def promtool_bin() -> str:
    return debian_tool("promtool", "prometheus")


def blackbox_bin() -> str:
    return debian_tool("prometheus-blackbox-exporter", "prometheus-blackbox-exporter")


def netns_cmd(ns: str | None, argv: list[str]) -> list[str]:
    return (["ip", "netns", "exec", ns] if ns else []) + argv


def start_prometheus(ns: str | None, config: Path, data_dir: Path, listen: str, log: Path,
                     retention: str = "400d", extra: list[str] | None = None) -> subprocess.Popen:
    """Start prometheus; the retention must be longer than the SLA window (default 15d would drop it)."""
    data_dir.mkdir(parents=True, exist_ok=True)
    argv = [
        prometheus_bin(),
        f"--config.file={config}",
        f"--storage.tsdb.path={data_dir}",
        f"--storage.tsdb.retention.time={retention}",
        f"--web.listen-address={listen}",
        "--web.enable-lifecycle",
        *(extra or []),
    ]
    with open(log, "ab") as f:
        return subprocess.Popen(netns_cmd(ns, argv), stdout=f, stderr=subprocess.STDOUT, start_new_session=True)


def wait_ready(ns: str | None, url: str, proc: subprocess.Popen | None = None, timeout: float = 60.0,
               ca_file: str | None = None, auth: tuple[str, str] | None = None) -> None:
    def probe() -> bool:
        try:
            return requests.get(f"{url}/-/ready", timeout=2, verify=ca_file or True, auth=auth).status_code == 200
        except requests.RequestException:
            return False

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"{proc.args} exited with {proc.returncode}")
        if in_netns(ns, probe):
            return
        time.sleep(0.3)
    raise TimeoutError(f"{url} not ready after {timeout}s")


def stop(proc: subprocess.Popen, timeout: float = 20.0) -> None:
    """End a process we started (by its PID)."""
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


def backfill_openmetrics(files: list[Path], out_dir: Path, parallel: int = 2, max_block_duration: str | None = None) -> None:
    """Backfill OpenMetrics files into TSDB blocks in ``out_dir``.

    promtool 2.42 re-reads its whole input once per block (2h unless
    ``max_block_duration`` allows longer ones: 54h gives a day file one or two
    blocks instead of twelve), so the cost grows with (file size x blocks): give
    it one file per day (or shorter) rather than one file for the whole history.
    Files are imported ``parallel`` at a time.
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    pending = list(files)
    running: list[tuple[Path, subprocess.Popen]] = []
    failures = []
    try:
        while pending or running:
            while pending and len(running) < parallel:
                f = pending.pop(0)
                argv = [promtool_bin(), "tsdb", "create-blocks-from", "openmetrics", "--quiet",
                        *([f"--max-block-duration={max_block_duration}"] if max_block_duration else []), str(f), str(out_dir)]
                running.append((f, subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)))
            f, p = running[0]
            out, _ = p.communicate()
            running.pop(0)
            if p.returncode != 0:
                failures.append(f"{f}: exit {p.returncode}: {out.strip()[-500:]}")
    finally:  # interrupted: end the promtools we started (by PID)
        for _, p in running:
            stop(p, timeout=5)
    if failures:
        raise RuntimeError("promtool openmetrics backfill failed: " + "; ".join(failures))


def backfill_rules(ns: str | None, url: str, rule_files: list[Path], start: int, end: int, out_dir: Path,
                   eval_interval: str = "60s") -> None:
    """Evaluate recording rules over history (promtool queries ``url``, so it runs in ``ns`` too).

    One promtool per rule file, all at once (each writes its own sub-directory
    of ``out_dir``); rules must not depend on other rules being backfilled.
    """
    procs = []
    failures = []
    try:
        for i, rf in enumerate(rule_files):
            od = out_dir / f"r{i}"
            od.mkdir(parents=True, exist_ok=True)
            argv = [promtool_bin(), "tsdb", "create-blocks-from", "rules", "--quiet", f"--url={url}", f"--start={start}",
                    f"--end={end}", f"--output-dir={od}", f"--eval-interval={eval_interval}", str(rf)]
            procs.append((rf, subprocess.Popen(netns_cmd(ns, argv), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)))
        for rf, p in procs:
            out, _ = p.communicate()
            if p.returncode != 0:
                failures.append(f"{rf}: exit {p.returncode}: {out.strip()[-500:]}")
    finally:  # interrupted: end the promtools we started (by PID)
        for _, p in procs:
            stop(p, timeout=5)
    if failures:
        raise RuntimeError("promtool rules backfill failed: " + "; ".join(failures))


def move_blocks(src: Path, data_dir: Path) -> int:
    """Move TSDB blocks (ULID directories) from ``src`` into a Prometheus data dir; returns how many."""
    n = 0
    data_dir.mkdir(parents=True, exist_ok=True)
    for b in sorted(src.rglob("meta.json")):
        b = b.parent
        if b.is_dir() and (b / "meta.json").exists():
            shutil.move(str(b), str(data_dir / b.name))
            n += 1
    return n
