"""The lab's record of what it made: ``<lab dir>/state.json``.

Everything a lab starts or creates is written here the moment it exists, so
that ``dcops lab down`` can undo it exactly (processes are ended by PID, never
by name) even after a crash halfway through ``lab up``.

The record is generic so that every part of the lab uses the same file:

- processes: ``{component, name, pid, start_time, cluster, ports, dir, log, cmd}``
  (``start_time`` is the kernel's start tick of the PID, so a PID the kernel
  has reused for another program is never signalled);
- resources: ``{kind, id, ...}`` for anything else (network namespaces, links,
  mounts, files), in creation order, so they can be removed in reverse;
- values: small named facts (``k8s.primary.apiserver_port``...).

Every mutation (``add_process``, ``add_resource``, ``set``...) re-reads the
file under an exclusive lock, applies the change and writes it atomically
(mode 0600), so several modules, or processes, can record into the same lab
without losing each other's entries.  ``save()`` exists for explicit writes.

Example::

    st = LabState.load("dcops")
    st.add_process("k8s", "primary/etcd", pid, cluster="primary", ports={"client": 2379})
    st.add_resource("netns", "dcops-hub")
    for p in st.processes():
        print(p["name"], pid_alive(p["pid"], p.get("start_time")))
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import os
import time
from pathlib import Path
from typing import Any, Callable, Iterator

from ..paths import lab_dir, lab_name

STATE_FILE = "state.json"
_LOCK_FILE = ".state.lock"
_CLI_LOCK = ".lab.lock"


def _empty(name: str) -> dict[str, Any]:
    return {"lab": name, "created": time.time(), "processes": [], "resources": [], "values": {}}


def proc_start_time(pid: int) -> int | None:
    """The start time (clock ticks since boot) of a PID, or None if there is no such process."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return None
    # Field 2 (comm) may contain spaces and parentheses: split after the last ')'.
    rest = raw[raw.rindex(")") + 2 :].split()
    # rest[0] is field 3 (state); starttime is field 22 -> rest[19].
    return int(rest[19])


def proc_state(pid: int) -> str | None:
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return None
    return raw[raw.rindex(")") + 2 :].split()[0]


def pid_alive(pid: int, start_time: int | None = None) -> bool:
    """True if ``pid`` runs and (when given) is the same process that was recorded.

    A zombie counts as gone (it is reaped here when it is our own child).
    """
    st = proc_state(pid)
    if st is None:
        return False
    if st in ("Z", "X"):
        with contextlib.suppress(ChildProcessError, OSError):
            os.waitpid(pid, os.WNOHANG)
        return False
    if start_time is not None and proc_start_time(pid) != start_time:
        return False
    return True


class LabState:
    """Handle on one lab's ``state.json``; see the module docstring."""

    def __init__(self, name: str, data: dict[str, Any], directory: Path):
        self.name = name
        self.data = data
        self.dir = directory

    # ------------------------------------------------------------------ loading
    @classmethod
    def load(cls, name: str | None = None) -> "LabState":
        """The lab's state (empty if the lab has none yet). Does not create anything."""
        n = lab_name(name)
        d = lab_dir(n)
        return cls(n, cls._read(d / STATE_FILE, n), d)

    @staticmethod
    def _read(path: Path, name: str) -> dict[str, Any]:
        try:
            data = json.loads(path.read_text())
        except FileNotFoundError:
            return _empty(name)
        for k, v in _empty(name).items():
            data.setdefault(k, v)
        return data

    @property
    def path(self) -> Path:
        return self.dir / STATE_FILE

    def exists(self) -> bool:
        return self.path.exists()

    def is_empty(self) -> bool:
        return not (self.data["processes"] or self.data["resources"])

    # ------------------------------------------------------------------ writing
    def _ensure_dir(self) -> None:
        self.dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        os.chmod(self.dir, 0o700)

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        self._ensure_dir()
        fd = os.open(self.dir / _LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
            os.close(fd)

    def _write(self) -> None:
        tmp = self.path.with_suffix(f".tmp{os.getpid()}")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            json.dump(self.data, f, indent=2, sort_keys=True)
            f.write("\n")
        os.replace(tmp, self.path)

    def update(self, change: Callable[[dict[str, Any]], None]) -> None:
        """Re-read, apply ``change(data)``, write atomically; all under the state lock."""
        with self._locked():
            self.data = self._read(self.path, self.name)
            change(self.data)
            self._write()

    def save(self) -> None:
        """Write this handle's data as it is (prefer the mutators, which merge)."""
        with self._locked():
            self._write()

    def reload(self) -> "LabState":
        self.data = self._read(self.path, self.name)
        return self

    # ------------------------------------------------------------------ processes
    def add_process(
        self,
        component: str,
        name: str,
        pid: int,
        *,
        cluster: str | None = None,
        ports: dict[str, int] | None = None,
        dir: str | Path | None = None,
        log: str | Path | None = None,
        cmd: list[str] | None = None,
        **extra: Any,
    ) -> dict[str, Any]:
        """Record a started process (call right after starting it)."""
        rec: dict[str, Any] = {
            "component": component,
            "name": name,
            "pid": pid,
            "start_time": proc_start_time(pid),
            "started": time.time(),
            "cluster": cluster,
            "ports": dict(ports or {}),
            "dir": str(dir) if dir else None,
            "log": str(log) if log else None,
            "cmd": list(cmd or []),
            **extra,
        }

        def change(d: dict[str, Any]) -> None:
            d["processes"] = [p for p in d["processes"] if not (p["pid"] == pid and p["name"] == name)]
            d["processes"].append(rec)

        self.update(change)
        return rec

    def remove_process(self, pid: int) -> None:
        self.update(lambda d: d.__setitem__("processes", [p for p in d["processes"] if p["pid"] != pid]))

    def processes(self, component: str | None = None, cluster: str | None = None) -> list[dict[str, Any]]:
        return [
            p
            for p in self.data["processes"]
            if (component is None or p["component"] == component) and (cluster is None or p.get("cluster") == cluster)
        ]

    def alive(self, component: str | None = None) -> list[dict[str, Any]]:
        return [p for p in self.processes(component) if pid_alive(p["pid"], p.get("start_time"))]

    # ------------------------------------------------------------------ resources
    def add_resource(self, kind: str, id: str, **extra: Any) -> dict[str, Any]:
        """Record something made (a netns, a link, a mount, a directory...), in order."""
        rec = {"kind": kind, "id": id, "created": time.time(), **extra}

        def change(d: dict[str, Any]) -> None:
            d["resources"] = [r for r in d["resources"] if not (r["kind"] == kind and r["id"] == id)]
            d["resources"].append(rec)

        self.update(change)
        return rec

    def remove_resource(self, kind: str, id: str) -> None:
        self.update(
            lambda d: d.__setitem__(
                "resources", [r for r in d["resources"] if not (r["kind"] == kind and r["id"] == id)]
            )
        )

    def resources(self, kind: str | None = None) -> list[dict[str, Any]]:
        return [r for r in self.data["resources"] if kind is None or r["kind"] == kind]

    # ------------------------------------------------------------------ values
    def set(self, key: str, value: Any) -> None:
        self.update(lambda d: d["values"].__setitem__(key, value))

    def get(self, key: str, default: Any = None) -> Any:
        return self.data["values"].get(key, default)


class LabBusy(RuntimeError):
    """Another ``dcops lab up/down`` holds this lab's lock."""


@contextlib.contextmanager
def lab_lock(name: str | None = None, wait: float = 0.0) -> Iterator[None]:
    """Exclusive lock for whole-lab operations (``lab up``/``lab down``).

    Held by the CLI only; modules called from it (the hosts part) must not take
    it again.  Raises :class:`LabBusy` if another process holds it after ``wait``
    seconds.
    """
    d = lab_dir(name)
    d.mkdir(parents=True, exist_ok=True, mode=0o700)
    path = d / _CLI_LOCK
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    deadline = time.monotonic() + wait
    try:
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except OSError as e:
                if e.errno not in (errno.EAGAIN, errno.EACCES):
                    raise
                if time.monotonic() >= deadline:
                    raise LabBusy(f"another `dcops lab` command is working on lab '{lab_name(name)}'") from None
                time.sleep(0.2)
        yield
    finally:
        with contextlib.suppress(OSError):
            fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)
