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
SYNC_MARK = "@dcops-sync"  # between the key's output and the whole-state check's, with the key script's exit status
KEEPALIVE = 3  # seconds
IDLE_POLL = 1.0  # seconds: how often an idle connection's reader wakes (paramiko's own 0.1 s is 10 a second per host)
CONNECT_RETRIES = 1  # pyinfra's ssh_connect_retries: one more try for a host whose handshake failed
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
            # pyinfra's own retry: a host that drops the handshake once (banner timeout, "No existing
            # session") gets a second try 1-3 s later, all within the connect deadline. At 700 sites
            # 4 of 701 dropped it once in `wan apply --check` and answered at once afterwards.
            "ssh_connect_retries": CONNECT_RETRIES,
            "ssh_connect_retry_min_delay": 1.0,
            "ssh_connect_retry_max_delay": 3.0,
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
            transport = h.connector.client.get_transport()
            transport.set_keepalive(KEEPALIVE)
            # Each connection's reader thread wakes on its socket's timeout to check for keepalives
            # and the close: at 500+ connected hosts, paramiko's 0.1 s (thousands of wake-ups a
            # second) was most of the engine's CPU. Keepalives and closes are at most 1 s late.
            transport.sock.settimeout(IDLE_POLL)
        except gevent.Timeout:
            return f"no SSH session within {deadline}s (the host accepted, then stalled)"
        except (ConnectError, PyinfraError, OSError, Exception) as e:  # noqa: BLE001
            return _msg(e)
        return None

    # ------------------------------------------------------------------ connect, then the key
    script = spec["key_read"] if check else spec["key_create"]

    def as_root(h, script: str):
        """One of our own bash scripts as root, in one round trip. With a sudo password, ``sudo -S``
        reads it from the channel's stdin. pyinfra's own way (``_sudo_password``) first writes an
        askpass script on the host and removes it at disconnect (two more round trips per host),
        and puts the password in the environment of an ``env`` command, where ``ps`` shows it."""
        if sudo_pw:
            return h.run_shell_command(StringCommand("sudo", "-S", "-p", "''", "-H", "bash", "-c", QuoteString(script)),
                                       _stdin=sudo_pw)
        return h.run_shell_command(StringCommand("bash", "-c", QuoteString(script)), _sudo=True)

    # The whole-state check each host would get if the keys are the ones earlier runs gathered
    # (dcops renders it from its key cache). It runs in the key's round trip; its verdict counts
    # only if the check rendered from the keys read now is the same script (see deploy).
    presync: dict[str, str] = spec.get("presync") or {}
    presync_clean: set[str] = set()

    def key(h):
        pre = presync.get(h.name)
        with ctx_host.use(h):
            try:
                if pre is None:
                    ok, out = as_root(h, script)
                    return ok, "\n".join(out.stdout_lines) if ok else "\n".join(out.stderr_lines or out.stdout_lines)
                # each in its own subshell: the key script's `set -e` and `exit` stay in it
                ok, out = as_root(h, f"(\n{script}\n)\nk=$?\necho {SYNC_MARK} $k\n(\n{pre}\n)")
            except Exception as e:  # noqa: BLE001
                return False, _msg(e)
        lines = list(out.stdout_lines)
        at = next((i for i, line in enumerate(lines) if line.startswith(SYNC_MARK + " ")), None)
        if at is None:  # sudo or the shell failed before the key script ran
            return False, "\n".join(out.stderr_lines or lines)
        key_ok = lines[at].split()[-1] == "0"
        if ok and key_ok and not any(line.strip() for line in lines[at + 1:]):
            presync_clean.add(h.name)
        return key_ok, "\n".join(lines[:at]) if key_ok else "\n".join(out.stderr_lines or lines[:at])

    def connect_and_key(h):
        """A host's connect and its key read, one after the other in its own greenlet: a host
        reads its key while others still connect (no wait for the slowest connect)."""
        err = connect(h)
        if err:
            return h, err, None
        state.activate_host(h)
        return h, None, key(h)

    hosts = list(inventory)
    keys: dict[str, str] = {}
    answered = set()
    # as each host finishes (imap_unordered spawns as the pool frees a slot): events as they come
    for h, err, answer in state.pool.imap_unordered(connect_and_key, hosts):
        if err:
            emit(ev="task", phase="connect", host=h.name, task="connect", status="unreachable", msg=err)
            continue
        answered.add(h.name)
        ok, text = answer
        if not ok:
            emit(ev="task", phase="keys", host=h.name, role="wireguard", task="WireGuard key", status="failed", msg=text)
            continue
        keys[h.name] = text
    live = [h for h in hosts if h.name in answered]  # inventory order
    mark(f"connected {len(live)}/{len(hosts)}, keys {len(keys)}")
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
        if h.name in presync_clean and presync.get(h.name) == script:
            return True  # this very check printed nothing in the key's round trip
        try:
            ok, out = as_root(h, script)
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

    for h, (ops, error, failed_op, secs) in state.pool.imap_unordered(lambda h: (h, deploy(h)), targets):
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

    def disconnect(h):
        try:
            h.disconnect()
        except Exception:  # noqa: BLE001
            pass

    # at once: each close waits for its transport thread's next poll (up to 0.1 s), and one after
    # the other that was seconds at a few hundred hosts
    gevent.joinall([state.pool.spawn(disconnect, h) for h in live])
    mark("disconnected")
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
