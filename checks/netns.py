"""Run code inside a network namespace (lab rule: every lab client runs in a lab namespace).

``in_netns(ns, fn)`` runs ``fn`` on a fresh thread that first joins
``/run/netns/<ns>`` with setns(2).  A network namespace is a per-thread
attribute, so the rest of the process is untouched; sockets made by ``fn``
live in that namespace.  ``ns=None`` runs ``fn`` in the caller's namespace.
"""

from __future__ import annotations

import ctypes
import os
import threading
from pathlib import Path
from typing import Any, Callable, TypeVar

T = TypeVar("T")
CLONE_NEWNET = 0x40000000
_libc = ctypes.CDLL(None, use_errno=True)


class NetnsMissing(RuntimeError):
    pass


def netns_path(ns: str) -> Path:
    return Path("/run/netns") / ns


def exists(ns: str) -> bool:
    return netns_path(ns).exists()


def in_netns(ns: str | None, fn: Callable[..., T], *args: Any, **kw: Any) -> T:
    if ns is None:
        return fn(*args, **kw)
    path = netns_path(ns)
    if not path.exists():
        raise NetnsMissing(f"network namespace '{ns}' does not exist (is the lab up? `dcops lab status`)")
    box: dict[str, Any] = {}

    def run() -> None:
        try:
            fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
            try:
                if _libc.setns(fd, CLONE_NEWNET) != 0:
                    e = ctypes.get_errno()
                    raise OSError(e, f"setns({path}): {os.strerror(e)}")
            finally:
                os.close(fd)
            box["value"] = fn(*args, **kw)
        except BaseException as e:  # re-raised in the caller
            box["error"] = e

    t = threading.Thread(target=run, name=f"netns-{ns}", daemon=True)
    t.start()
    t.join()
    if "error" in box:
        raise box["error"]
    return box["value"]
