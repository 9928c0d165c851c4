"""pyinfra side of the WAN rollout: deploy exactly what infra/render/endpoint.py rendered.

The host's data carries ``<part>_state`` for every part (the same variables the Ansible
roles get in their host_vars): directories, files, services and converge steps. Nothing
here is configuration; it is the mechanism, in the same order as the Ansible roles:

per part: directories -> files -> on change: daemon-reload, precheck, restart/reload ->
services enabled and running -> converge (check the live state, repair drift).

Used by ``playbooks/pyinfra/deploy.py`` (pyinfra CLI) and by ``dcops wan apply --engine
pyinfra`` (infra/wan/pyinfra_engine.py), which calls :func:`apply_endpoint` per host.
"""

from __future__ import annotations

from io import StringIO

from pyinfra import host
from pyinfra.api import FactBase, QuoteString, StringCommand, operation
from pyinfra.facts.files import FileContents
from pyinfra.operations import files, server, systemd

PARTS = ("sysctl", "firewall", "admins", "ssh_hardening", "wireguard", "node_exporter", "time", "logging")


class Drift(FactBase):
    """Output of a rendered converge check: the drift, empty when in sync."""

    def command(self, script):
        return StringCommand("bash", "-c", QuoteString(script))

    def process(self, output):
        return "\n".join(line for line in output).strip()


@operation()
def converge(what: str, check: str, apply: str, drift_out: list | None = None):
    """Run the rendered check; when it prints drift, run the rendered repair."""
    drift = host.get_fact(Drift, script=check)
    if drift:
        if drift_out is not None:
            drift_out.append(f"{what}:\n{drift}")
        yield StringCommand("bash", "-c", QuoteString(apply))
    else:
        host.noop(f"{what}: in sync")


def _any_changed(ops):
    return lambda: any(o.did_change() for o in ops)


def apply_endpoint(data, check: bool = False, done: list | None = None) -> list[tuple[str, str, object, list[str]]]:
    """Add (and, when executing, run) the operations for this host.

    Returns ``(part, label, OperationMeta, diffs)`` per operation; ``label`` starts with
    ``on change:`` for the operations that only run after a file of the part changed.
    ``done`` (when given) is filled as operations are added, so a caller still knows what
    ran when an operation fails (executing mode raises at the failing operation).
    """
    done = [] if done is None else done
    get = data.get if hasattr(data, "get") else (lambda k, d=None: getattr(data, k, d))
    for part in PARTS:
        p = get(f"{part}_state")
        if not p:
            continue
        for d in p["dirs"]:
            op = files.directory(
                name=f"{part}: directory {d['path']}",
                path=d["path"],
                mode=d["mode"],
                user=d["owner"],
                group=d["group"],
            )
            done.append((part, d["path"], op, []))
        file_ops = []
        for f in p["files"]:
            diffs = []
            if check:
                diffs = [_diff(f)]
            op = files.put(
                name=f"{part}: file {f['path']}",
                src=StringIO(f["content"]),
                dest=f["path"],
                mode=f["mode"],
                user=f["owner"],
                group=f["group"],
                create_remote_dir=False,
            )
            file_ops.append(op)
            done.append((part, f["path"], op, [x for x in diffs if x]))
        changed = _any_changed(file_ops)
        if file_ops:
            if p.get("daemon_reload"):
                op = systemd.daemon_reload(name=f"{part}: on change: daemon-reload", _if=changed)
                done.append((part, "on change: daemon-reload", op, []))
            for s in p["services"]:
                if s.get("precheck") and s.get("on_change"):
                    op = server.shell(name=f"{part}: on change: check {s['name']}", commands=[s["precheck"]], _if=changed)
                    done.append((part, f"on change: {s['precheck']}", op, []))
            for s in p["services"]:
                if s.get("on_change"):
                    op = systemd.service(
                        name=f"{part}: on change: {s['on_change'][:-2]} {s['name']}",
                        service=s["name"],
                        running=None,
                        restarted=s["on_change"] == "restarted",
                        reloaded=s["on_change"] == "reloaded",
                        _if=changed,
                    )
                    done.append((part, f"on change: {s['on_change']} {s['name']}", op, []))
        for s in p["services"]:
            op = systemd.service(name=f"{part}: service {s['name']}", service=s["name"], running=True, enabled=True)
            done.append((part, f"service {s['name']}", op, []))
        for c in p["converge"]:
            drift: list[str] = []
            op = converge(name=f"{part}: {c['name']}", what=c["name"], check=c["check"], apply=c["apply"], drift_out=drift)
            done.append((part, c["name"], op, drift))
    return done


def _diff(f) -> str:
    """Unified diff of the live file against the rendered one (check mode only)."""
    import difflib

    try:
        cur = host.get_fact(FileContents, path=f["path"])
    except Exception:  # noqa: BLE001 - an unreadable file shows as new
        cur = None
    before = [line + "\n" for line in (cur or [])]
    after = f["content"].splitlines(keepends=True)
    if before == after or (cur is not None and "".join(before).rstrip("\n") == f["content"].rstrip("\n")):
        return ""
    return "".join(difflib.unified_diff(before, after, f"{f['path']} (live)", f"{f['path']} (rendered)"))
