"""The Pulumi provider plugins dcops builds, made visible to every PULUMI_HOME it uses.

``scripts/install-tools`` builds ``pulumi-resource-kubernetes`` and installs it with
``pulumi plugin install resource kubernetes <version> --file ...`` into one shared
Pulumi home, ``$DCOPS_CACHE/tools/pulumi-home``.  Each lab (and each stack
environment) has a PULUMI_HOME of its own; its ``plugins/`` is a symlink to the
shared one, so the plugin is found with ``PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION=true``
and nothing is copied or downloaded per lab.  The binary itself is kept out of PATH
(``$DCOPS_CACHE/tools/plugins``): Pulumi would take a plugin found on PATH before
its plugin cache.
"""

from __future__ import annotations

import os
from pathlib import Path

from .paths import REPO, cache_dir


def kubernetes_release() -> str:
    """The pulumi-kubernetes release install-tools builds (``release`` in tools/kubernetes/source)."""
    for line in (REPO / "tools" / "kubernetes" / "source").read_text().splitlines():
        parts = line.split()
        if len(parts) == 2 and parts[0] == "release":
            return parts[1]
    raise RuntimeError("tools/kubernetes/source has no `release` line")


def shared_home() -> Path:
    return cache_dir() / "tools" / "pulumi-home"


def shared_plugins() -> Path:
    return shared_home() / "plugins"


def link_plugins(home: Path) -> Path:
    """Make ``home/plugins`` the shared plugin directory (a symlink); returns ``home/plugins``.

    A ``plugins`` directory that is empty is replaced by the link; one that holds plugins
    (installed there by hand) is left alone.  The shared home itself is never linked.
    """
    home = Path(home)
    link = home / "plugins"
    target = shared_plugins()
    if home.resolve() == shared_home().resolve():
        return link
    home.mkdir(parents=True, exist_ok=True, mode=0o700)
    if link.is_symlink():
        if Path(os.readlink(link)) == target:
            return link
        link.unlink()
    elif link.is_dir():
        if any(link.iterdir()):
            return link
        link.rmdir()
    target.mkdir(parents=True, exist_ok=True, mode=0o755)
    link.symlink_to(target, target_is_directory=True)
    return link


def kubernetes_plugin_installed() -> bool:
    """Whether install-tools installed the kubernetes provider plugin into the shared home."""
    return (shared_plugins() / f"resource-kubernetes-v{kubernetes_release()}" / "pulumi-resource-kubernetes").is_file()
