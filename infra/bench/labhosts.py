"""Lab WAN hosts for the benchmark cases, and the floor they are compared with.

The floor is what no configuration tool can beat on these hosts: from the management
namespace, for every host, one SSH connection running ``true`` and one file copied over SSH,
``parallel`` hosts at a time (the same parallelism the engines use).
"""

from __future__ import annotations

import contextlib
import os
import shlex
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import yaml

from ..lab import hosts as lab_hosts
from ..lab import netexec
from ..lab.topology import scaled_province
from ..model import ProvinceFile
from ..paths import lab_dir
from . import Progress


def workdir(name: str, progress: Progress | None = None) -> Path:
    """A new working directory for one case run (province files, apply logs, results JSON).

    Made by ``tempfile.mkdtemp``: a fresh, unpredictable name under the temporary directory,
    created 0700 and owned by the caller, so nobody else can plant files or symlinks where a
    case running as root writes (a fixed ``/tmp/dcops-bench-<name>`` allowed that).  It is kept
    after the run (the figures' notes point at its logs)."""
    d = Path(tempfile.mkdtemp(prefix=f"dcops-bench-{name}-"))
    os.chmod(d, 0o700)
    if progress:
        progress(f"bench {name}: working directory {d}")
    return d


def province_of(base: ProvinceFile, n: int, workdir: Path) -> tuple[ProvinceFile, Path]:
    """The province scaled to ``n`` sites, and a file of it that ``dcops`` commands can read."""
    model = scaled_province(base, n)
    workdir.mkdir(parents=True, exist_ok=True)
    p = workdir / f"province-{n}.yaml"
    p.write_text(yaml.safe_dump(model.model_dump(mode="json", exclude_defaults=False), allow_unicode=True, sort_keys=False))
    return model, p


def floor_payload(model: ProvinceFile) -> bytes:
    """The file the floor copies: a site's rendered nftables ruleset (a typical managed file)."""
    from ..render import endpoint as E

    keys = {h: "A" * 43 + "=" for h in E.hosts(model)}
    return E.render(model, keys)[model.wan.sites[0].id].file(E.NFT_CONF).content.encode()


def start(model: ProvinceFile, name: str, progress: Progress) -> dict:
    """Fresh WAN hosts for every site of ``model`` (any left from before are removed first)."""
    stop(name)
    t0 = time.monotonic()
    lab_hosts.up(model, name, sites=None, progress=lambda m: progress("  " + m) if "up (" not in m else None)
    lay = netexec.layout(name)
    bad = [h for h in lay.get("failed") or [] if not str(h).startswith("frontend:")]
    if bad:
        raise RuntimeError(f"lab hosts failed to start: {bad}")
    return {"seconds": time.monotonic() - t0, "memory_per_host_mib": lay.get("memory_per_host_mib"),
            "host_pss_mib": lay.get("host_pss_mib"), "hosts": len(lay.get("ssh", {}))}


def stop(name: str) -> None:
    if (lab_dir(name) / "state.json").exists():
        lab_hosts.down(name, progress=lambda m: None)
    with contextlib.suppress(FileNotFoundError):
        shutil.rmtree(lab_dir(name))


def floor(name: str, parallel: int, payload: bytes) -> float:
    """Seconds for ``ssh host true`` plus one copy of ``payload`` to every WAN host, ``parallel`` at once."""
    lay = netexec.layout(name)
    addrs = sorted(set(lay["ssh"].values()))
    cfg = netexec.ssh_paths(name)["config"]
    with tempfile.TemporaryDirectory(prefix=f"dcops-{name}-floor-") as d:
        src = Path(d) / "payload"
        src.write_bytes(payload)
        (Path(d) / "hosts").write_text("\n".join(addrs) + "\n")
        one = (f"ssh -F {shlex.quote(str(cfg))} \"$1\" true && "
               f"ssh -F {shlex.quote(str(cfg))} \"$1\" 'umask 077 && cat > .dcops-floor' < {shlex.quote(str(src))}")
        script = f"xargs -P {parallel} -n 1 sh -c {shlex.quote(one)} _ < {shlex.quote(str(Path(d) / 'hosts'))}"
        t0 = time.monotonic()
        p = subprocess.run(netexec.mgmt_argv(name, ["sh", "-c", script]), capture_output=True, text=True)
        dt = time.monotonic() - t0
    if p.returncode != 0:
        raise RuntimeError(f"floor: ssh to the lab hosts failed (exit {p.returncode}): {p.stderr[-1500:]}")
    return dt
