"""Where dcops keeps things outside the repository.

- Go-built tools (Pulumi CLI, language host, Kubernetes control plane, kwok,
  etcd, kubectl): ``$DCOPS_CACHE/tools/bin`` (built by ``scripts/install-tools``).
- Labs: ``$DCOPS_LAB_ROOT/<lab name>/`` (default ``$DCOPS_CACHE/labs``): state,
  certificates, kubeconfigs, the Pulumi file backend and its passphrase (0600).
"""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


class ToolMissing(RuntimeError):
    """A tool dcops needs is not installed; the message says how to install it."""


def cache_dir() -> Path:
    return Path(os.environ.get("DCOPS_CACHE", Path.home() / ".cache" / "dcops"))


def tools_bin() -> Path:
    return cache_dir() / "tools" / "bin"


def tool(name: str) -> Path:
    """Path of a Go-built tool (or a system one for Debian packages), or ToolMissing."""
    p = tools_bin() / name
    if p.exists():
        return p
    found = shutil.which(name)
    if found:
        return Path(found)
    raise ToolMissing(
        f"'{name}' is not installed: run `scripts/install-tools` (Go-built tools, into {tools_bin()}) "
        f"or `scripts/install-system` (Debian packages); both are idempotent."
    )


def lab_root() -> Path:
    return Path(os.environ.get("DCOPS_LAB_ROOT", cache_dir() / "labs"))


def lab_name(name: str | None = None) -> str:
    """Lab name: --name, else $DCOPS_LAB, else 'dcops'. Short, lower-case, safe in names."""
    n = name or os.environ.get("DCOPS_LAB") or "dcops"
    if not re.fullmatch(r"[a-z][a-z0-9]{0,7}", n):
        raise ValueError(f"lab name '{n}' must be 1-8 lower-case letters or digits, starting with a letter")
    return n


def lab_dir(name: str | None = None) -> Path:
    return lab_root() / lab_name(name)
