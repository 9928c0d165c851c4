"""The pyinfra engine of ``dcops wan apply``, over the stack's SSH access.

``python -m infra.wan.pyinfra_engine`` talks JSON lines with dcops (infra/wan/engines.py):

1. stdin: the spec (hosts, groups, connection, check mode, the rendered key commands);
2. it connects to every host, runs the key command on each (first pass) and writes
   ``@dcops {"ev": "keys", ...}`` (public keys only);
3. stdin: ``{"endpoints": {host: rendered vars}}``, rendered by dcops from those keys;
4. it deploys them with ``playbooks/pyinfra/dcops_endpoint.py`` (one greenlet per host, the
   host's operations in order, without waiting for the other hosts) and writes a task event
   per operation and ``host_done`` per host; ``end`` last.

Connections stay open between the two passes. Nothing secret is written.
"""

from __future__ import annotations

import time  # isort: skip

_T0 = time.monotonic()  # the phase times in the log count from here (imports included)

# pyinfra's API needs gevent's monkey patching before anything else is imported:
# paramiko's transport threads and the SFTP uploads otherwise block the event loop.
from gevent import monkey  # isort: skip

monkey.patch_all()

import json  # noqa: E402
import logging
import sys
import traceback
from pathlib import Path

import gevent

from pyinfra.api import Config, Inventory, QuoteString, State, StringCommand
from pyinfra.api.exceptions import ConnectError, NestedOperationError, PyinfraError
from pyinfra.api.state import StateStage
from pyinfra.context import ctx_config, ctx_host, ctx_inventory, ctx_state

REPO = Path(__file__).resolve().parent.parent.parent
sys.path.insert(0, str(REPO / "playbooks" / "pyinfra"))

from dcops_endpoint import apply_endpoint  # noqa: E402

PREFIX = "@dcops "
KEEPALIVE = 3  # seconds
CONNECT_DEADLINE_FACTOR = 6  # a host's whole connect (TCP, banner, key exchange, auth) gets this many connect timeouts
_out = sys.stdout


def emit(**ev) -> None:
    _out.write(PREFIX + json.dumps(ev, ensure_ascii=False, default=str) + "\n")
    _out.flush()


def _read() -> dict:
    line = sys.stdin.readline()
    if not line:
        raise SystemExit("dcops closed the channel")
    return json.loads(line)


def _inventory(spec: dict) -> Inventory:
    """pyinfra's inventory from the stack's SSH access: its ssh_config gives the jump hosts
    (ProxyJump), identity and options; known_hosts is checked strictly."""
    c = spec["conn"]
    names = []
    for h in spec["hosts"]:
        data = {
            "ssh_hostname": spec["addresses"][h],
            "ssh_user": c["user"],
            "ssh_port": c.get("port") or 22,
            "ssh_config_file": c["ssh_config"],
            "ssh_known_hosts_file": c["known_hosts"],
            "ssh_strict_host_key_checking": "yes",
            "ssh_allow_agent": not c.get("key"),
            "ssh_look_for_keys": False,
        }
        if c.get("key"):
            data["ssh_key"] = c["key"]
        names.append((h, data))
    groups = {g: ([h for h in hs if h in spec["hosts"]], {}) for g, hs in spec["groups"].items()}
    groups = {g: v for g, v in groups.items() if v[0]}
    return Inventory((names, {}), **groups)


class _HostErrors(logging.Handler):
    """Keeps pyinfra's error messages per host (the host context is per greenlet)."""

    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.by_host: dict[str, list[str]] = {}

    def emit(self, record: logging.LogRecord) -> None:
        h = ctx_host.get()
        if h is not None:
            msg = record.getMessage()
            if "Error: executed" not in msg:
                self.by_host.setdefault(h.name, []).append(msg.strip())


def _msg(e: BaseException) -> str:
    return f"{type(e).__name__}: {e}".strip()[:2000]


def mark(what: str) -> None:
    """Phase times on stderr (the run's pyinfra.log): where a run's seconds went."""
    print(f"[{time.monotonic() - _T0:6.2f}s] {what}", file=sys.stderr, flush=True)


def main() -> int:
    mark("imported")
    spec = _read()
    mark("spec read")
    # pyinfra logs to the root logger: keep it off stdout (ours) and quiet.
    logging.basicConfig(stream=sys.stderr, level=logging.WARNING)
    logging.getLogger("pyinfra").setLevel(logging.ERROR)
    host_errors = _HostErrors()
    logging.getLogger("pyinfra").addHandler(host_errors)

    check = bool(spec["check"])
    pw_file = (spec.get("conn") or {}).get("become_password_file")
    sudo_pw = Path(pw_file).read_text().strip() if pw_file else None  # never written anywhere
    # the password for our own commands too: run_shell_command does not take it from the config, and
    # without it pyinfra would prompt on a terminal there is not (the run would hang)
    sudo_kw = {"_sudo_password": sudo_pw} if sudo_pw else {}
    config = Config(SUDO=True, CONNECT_TIMEOUT=spec.get("connect_timeout", 10), PARALLEL=spec.get("parallel") or 0,
                    **({"SUDO_PASSWORD": sudo_pw} if sudo_pw else {}))
    inventory = _inventory(spec)
    state = State(check_for_changes=check)
    state.init(inventory, config)
    state.print_output = False
    state.print_fact_output = False
    # The state, inventory and config contexts are process-wide (only the host is per greenlet).
    ctx_state.set(state)
    ctx_inventory.set(inventory)
    ctx_config.set(config)

    # ------------------------------------------------------------------ connect
    state.set_stage(StateStage.Connect)

    deadline = spec.get("connect_timeout", 10) * CONNECT_DEADLINE_FACTOR

    def connect(h):
        # CONNECT_TIMEOUT bounds the TCP connect only: a host whose sshd accepts and then stalls
        # (an overloaded or half-booted host) gets a deadline for its whole connect; then it is
        # unreachable, reported, and the others go on. gevent's own Timeout (a BaseException):
        # code under h.connect that catches Exception cannot swallow it.
        try:
            with gevent.Timeout(deadline):
                h.connect(raise_exceptions=True)
            # Keepalives: when a firewall on the path (the gateway's, on its first rollout)
            # starts tracking connections, a reply seen before any packet of ours is dropped;
            # our next packet re-opens the flow. Without them a waiting session would hang.
            h.connector.client.get_transport().set_keepalive(KEEPALIVE)
        except gevent.Timeout:
            return f"no SSH session within {deadline}s (the host accepted, then stalled)"
        except (ConnectError, PyinfraError, OSError, Exception) as e:  # noqa: BLE001
            return _msg(e)
        return None

    hosts = list(inventory)
    greenlets = {state.pool.spawn(connect, h): h for h in hosts}
    for g in gevent.iwait(list(greenlets)):
        h = greenlets[g]
        err = g.get()
        if err:
            emit(ev="task", phase="connect", host=h.name, task="connect", status="unreachable", msg=err)
        else:
            state.activate_host(h)
    live = [h for h in hosts if h in state.active_hosts]
    mark(f"connected {len(live)}/{len(hosts)}")

    # ------------------------------------------------------------------ keys
    script = spec["key_read"] if check else spec["key_create"]

    def key(h):
        with ctx_host.use(h):
            try:
                ok, out = h.run_shell_command(StringCommand("bash", "-c", QuoteString(script)), _sudo=True, **sudo_kw)
            except Exception as e:  # noqa: BLE001
                return False, _msg(e)
            return ok, "\n".join(out.stdout_lines) if ok else "\n".join(out.stderr_lines or out.stdout_lines)

    keys: dict[str, str] = {}
    greenlets = {state.pool.spawn(key, h): h for h in live}
    for g in gevent.iwait(list(greenlets)):
        h = greenlets[g]
        ok, text = g.get()
        if not ok:
            emit(ev="task", phase="keys", host=h.name, role="wireguard", task="WireGuard key", status="failed", msg=text)
            continue
        keys[h.name] = text
    mark(f"keys {len(keys)}")
    emit(ev="keys", stdout=keys)

    # ------------------------------------------------------------------ deploy
    job = _read()
    mark("endpoints read")
    endpoints: dict = job.get("endpoints", {})
    targets = [h for h in live if h.name in endpoints]
    for h in targets:
        for k, v in endpoints[h.name].items():
            setattr(h.data, k, v)  # override data: the rendered vars

    state.set_stage(StateStage.Prepare)
    if not check:
        state.is_executing = True  # operations run as they are added, host by host
        state.set_stage(StateStage.Execute)

    def in_sync(h) -> bool:
        """One round trip: the rendered whole-state check prints nothing when the host is in sync
        (then none of the per-operation fact gathering is needed)."""
        script = (getattr(h.data, "dcops_endpoint", None) or {}).get("sync_check")
        if not script:
            return False
        try:
            ok, out = h.run_shell_command(StringCommand("bash", "-c", QuoteString(script)), _sudo=True, **sudo_kw)
        except Exception:  # noqa: BLE001 - the full path will say what is wrong
            return False
        return bool(ok) and not any(line.strip() for line in out.stdout_lines)

    def deploy(h):
        t0 = time.monotonic()
        ops: list = []
        error = ""
        failed_name = ""
        with ctx_host.use(h):
            if in_sync(h):
                return None, "", "", time.monotonic() - t0
            try:
                apply_endpoint(h.data, check=check, done=ops)
            except NestedOperationError as e:
                op_hash = e.args[0] if e.args else ""
                try:
                    names = ", ".join(sorted(state.get_op_meta(op_hash).names))
                    meta = state.get_op_data_for_host(h, op_hash).operation_meta
                    lines = meta.stderr_lines or meta.stdout_lines
                except Exception:  # noqa: BLE001
                    names, lines = op_hash, []
                failed_name = names
                lines = lines or host_errors.by_host.get(h.name, [])[-5:]
                error = "\n".join(lines[-20:]) if lines else "failed (details in <lab dir>/wan/pyinfra.log)"
            except Exception as e:  # noqa: BLE001 - a failing operation stops this host only
                error = _msg(e)
                if not isinstance(e, PyinfraError):
                    print(traceback.format_exc(), file=sys.stderr)
        return ops, error, failed_name, time.monotonic() - t0

    greenlets = {state.pool.spawn(deploy, h): h for h in targets}
    for g in gevent.iwait(list(greenlets)):
        h = greenlets[g]
        ops, error, failed_op, secs = g.get()
        if ops is None:
            emit(ev="task", phase="deploy", host=h.name, role=None, status="ok", items=[], diffs=[], msg="",
                 task="in sync: every file, service and live state as rendered (one check)")
            emit(ev="host_done", host=h.name, seconds=round(secs, 2))
            continue
        for part, label, meta, diffs in ops:
            if label.startswith("on change:") and check:
                continue
            if check:
                changed = bool(meta._maybe_is_change)
                status = "changed" if changed else "ok"
            elif not meta.is_complete():
                continue
            elif meta.did_error():
                status, changed = "failed", False
                failed_op = f"{part}: {label}"
            else:
                changed = meta.did_change()
                status = "changed" if changed else "ok"
            emit(
                ev="task",
                phase="deploy",
                host=h.name,
                role=part,
                task=label,
                status=status,
                items=[label] if changed else [],
                diffs=diffs if changed else [],
                msg="",
            )
        if error or failed_op:
            out = _op_output(ops)
            emit(
                ev="task",
                phase="deploy",
                host=h.name,
                role=None,
                task=failed_op or "deploy",
                status="failed",
                items=[],
                diffs=[],
                msg=(error + ("\n" + out if out else "")).strip()[:4000],
            )
        emit(ev="host_done", host=h.name, seconds=round(secs, 2))

    mark("deployed")
    for h in live:
        try:
            h.disconnect()
        except Exception:  # noqa: BLE001
            pass
    emit(ev="end")
    return 0


def _op_output(ops) -> str:
    for part, label, meta, diffs in ops:
        if meta.is_complete() and meta.did_error():
            try:
                return "\n".join((meta.stderr_lines or meta.stdout_lines)[-20:])
            except Exception:  # noqa: BLE001
                return ""
    return ""


if __name__ == "__main__":
    sys.exit(main())
