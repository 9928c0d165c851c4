"""The lab's WAN hosts: one booted Debian host per site, a gateway, a management host.

``up(model, name, sites)`` makes, from the province file (names and addresses:
:mod:`infra.lab.topology`):

- network namespaces: the WAN switch ``<lab>-sw`` (a bridge; netem per tier on
  the site ports), the gateway ``<lab>-gw``, the management host
  ``<lab>-mgmt``, the data center ``<lab>-dc`` (every platform's front-end
  address, a small HTTP server per platform answering 200 on ``/`` and
  ``/healthz``), and per site the host ``<lab>-s<i>`` and its LAN client
  ``<lab>-l<i>``.  No namespace has a link to the machine's interfaces or a
  route out of the machine;
- per site, and for the gateway, a host booted with systemd:
  ``systemd-nspawn --boot --register=no --keep-unit --capability=CAP_NET_ADMIN
  --network-namespace-path=/run/netns/<ns>`` over an overlay whose lower dir is
  the shared base image (:mod:`infra.lab.image`) and whose upper dir is
  ``<lab dir>/hosts/<key>/upper`` (its own /etc and files).  Each runs detached
  (own session, log in ``<lab dir>/hosts/logs/``) in its own cgroup
  ``dcops-<lab>/<key>``, so ``down`` can make sure none of its processes stays;
- the management SSH key pair in ``<lab dir>/mgmt/`` (0600, never printed),
  whose public key is installed for user ``dcops`` in every host, and a
  ``known_hosts`` filled by ``ssh-keyscan`` from inside ``<lab>-mgmt`` once
  the hosts answer.  Every client runs in ``<lab>-mgmt``
  (:mod:`infra.lab.netexec`).

Hosts start in parallel (a sliding window, ``$DCOPS_LAB_PARALLEL``, default 6
per CPU) and count as up when their sshd answers from inside the management
namespace.  One host failing is reported and does not stop the others; ``up``
raises :class:`HostsFailed` at the end, naming them, with the rest of the lab
up.  Everything is recorded in the lab's ``state.json`` (component ``hosts``)
before or as it is created, so ``down(name)`` undoes it exactly, twice in a
row or after a crash of ``up``.
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import os
import queue
import shlex
import shutil
import signal
import statistics
import subprocess
import sys
import threading
import time
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Callable, Sequence

from ..model import ProvinceFile
from ..paths import lab_dir, lab_name, tool
from . import image, netexec, pki, topology
from .state import LabState, pid_alive, proc_start_time
from .topology import Frontend, Gateway, SiteHost, Topology

COMPONENT = "hosts"
Progress = Callable[[str], None]

HOST_TIMEOUT = float(os.environ.get("DCOPS_LAB_HOST_TIMEOUT", "180"))
STOP_TIMEOUT = float(os.environ.get("DCOPS_LAB_STOP_TIMEOUT", "30"))

_children: list[subprocess.Popen] = []


class HostsError(RuntimeError):
    """The WAN hosts could not be made (environment, leftovers of another run...)."""


class HostsFailed(HostsError):
    """Some hosts did not come up; the others did and the lab is usable without them."""

    def __init__(self, failed: dict[str, str]):
        self.failed = failed
        super().__init__(
            f"{len(failed)} host(s) did not come up: "
            + "; ".join(f"{h}: {why}" for h, why in sorted(failed.items()))
        )


# --------------------------------------------------------------------------- paths


def hosts_dir(name: str) -> Path:
    return lab_dir(name) / "hosts"


def logs_dir(name: str) -> Path:
    """Logs of the hosts (nspawn console), front ends, shaper and probe (on the lab's tmpfs)."""
    return host_fs(name) / "logs"


def host_fs(name: str) -> Path:
    """The lab's tmpfs holding every host's overlay upper and work dirs (and mount points)."""
    return hosts_dir(name) / "fs"


def _cgroup_roots() -> list[Path]:
    """Cgroup hierarchies to give each host its own cgroup in (v2 and/or name=systemd)."""
    base = Path("/sys/fs/cgroup")
    if (base / "cgroup.controllers").exists():
        return [base]
    return [base / sub for sub in ("unified", "systemd") if (base / sub / "cgroup.procs").exists()]


def _lab_cgroups(name: str) -> list[Path]:
    return [root / f"dcops-{name}" for root in _cgroup_roots()]


# --------------------------------------------------------------------------- small helpers


_libc = ctypes.CDLL(None, use_errno=True)
_CLONE_NEWNET = 0x40000000
_MNT_DETACH = 2


def _mount(source: str, target: Path, fstype: str, data: str) -> None:
    """mount(2) without a process per mount (hundreds of overlays)."""
    if _libc.mount(source.encode(), str(target).encode(), fstype.encode(), 0, data.encode()) != 0:
        e = ctypes.get_errno()
        raise HostsError(f"mount {fstype} on {target}: {os.strerror(e)}")


def _umount(target: str) -> bool:
    """Unmount ``target`` (lazily if it is busy); True when it is no longer mounted."""
    if _libc.umount2(target.encode(), 0) == 0:
        return True
    return _libc.umount2(target.encode(), _MNT_DETACH) == 0


def _set_forwarding(namespaces: list[str]) -> None:
    """net.ipv4.ip_forward=1 in each namespace, from one forked child (setns, no process per namespace)."""
    pid = os.fork()
    if pid == 0:  # child: only system calls and writes, then _exit
        code = 0
        try:
            for ns in namespaces:
                fd = os.open(f"/run/netns/{ns}", os.O_RDONLY)
                if _libc.setns(fd, _CLONE_NEWNET) != 0:
                    code = 3
                    break
                os.close(fd)
                with open("/proc/sys/net/ipv4/ip_forward", "w") as f:
                    f.write("1")
        except BaseException:
            code = 4
        os._exit(code)
    _, status = os.waitpid(pid, 0)
    if status != 0:
        raise HostsError(f"could not enable forwarding in the lab namespaces (status {status})")


def _meminfo() -> dict[str, int]:
    out = {}
    for line in Path("/proc/meminfo").read_text().splitlines():
        k, v = line.split(":", 1)
        out[k] = int(v.split()[0]) * 1024
    return out


def _used_bytes() -> int:
    m = _meminfo()
    return m["MemTotal"] - m["MemAvailable"]


def _run(argv: Sequence[str], input: str | None = None, check: bool = True) -> subprocess.CompletedProcess:
    p = subprocess.run(list(argv), input=input, capture_output=True, text=True)
    if check and p.returncode != 0:
        raise HostsError(f"`{' '.join(argv[:6])}{' ...' if len(argv) > 6 else ''}` failed: "
                         f"{(p.stderr or p.stdout).strip()[:2000]}")
    return p


def _ip_batch(lines: list[str], ns: str | None = None, force: bool = False) -> subprocess.CompletedProcess:
    argv = ["ip"] + (["-n", ns] if ns else []) + (["-force"] if force else []) + ["-batch", "-"]
    return _run(argv, input="\n".join(lines) + "\n", check=not force)


def _existing_netns() -> set[str]:
    try:
        return set(os.listdir("/run/netns"))
    except FileNotFoundError:
        return set()


def _mounts() -> list[str]:
    out = []
    for line in Path("/proc/mounts").read_text().splitlines():
        parts = line.split()
        if len(parts) > 1:
            out.append(parts[1].replace("\\040", " "))
    return out


def _log_tail(path: Path | str, lines: int = 12) -> str:
    try:
        text = Path(path).read_text(errors="replace").splitlines()
    except OSError:
        return ""
    return "\n".join("    " + ln[:300] for ln in text[-lines:])


def _proc_record(name: str, pid: int, **extra: Any) -> dict[str, Any]:
    return {
        "component": COMPONENT, "name": name, "pid": pid, "start_time": proc_start_time(pid),
        "started": time.time(), "cluster": None, "ports": {}, "dir": None, "log": None, "cmd": [], **extra,
    }


def _res(kind: str, id: str, **extra: Any) -> dict[str, Any]:
    return {"kind": kind, "id": id, "component": COMPONENT, "created": time.time(), **extra}


def _record(st: LabState, resources: Sequence[dict] = (), processes: Sequence[dict] = (),
            values: dict[str, Any] | None = None) -> None:
    """Add records in one locked read-modify-write of state.json."""

    def change(d: dict[str, Any]) -> None:
        if resources:
            keys = {(r["kind"], r["id"]) for r in resources}
            d["resources"] = [r for r in d["resources"] if (r["kind"], r["id"]) not in keys] + list(resources)
        if processes:
            pids = {p["pid"] for p in processes}
            d["processes"] = [p for p in d["processes"] if p["pid"] not in pids] + list(processes)
        for k, v in (values or {}).items():
            d["values"][k] = v

    st.update(change)


def _spawn(argv: list[str], log: Path, cgroups: Sequence[Path] = (), env: dict[str, str] | None = None) -> subprocess.Popen:
    """Start ``argv`` detached (own session, stdin closed, output to ``log``), first moved into ``cgroups``."""
    log.parent.mkdir(parents=True, exist_ok=True)
    joins = "".join(f'echo $$ > {shlex.quote(str(c / "cgroup.procs"))} || exit 97; ' for c in cgroups)
    cmd = ["/bin/sh", "-c", f'{joins}exec "$@"', "sh", *argv]
    fd = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    try:
        p = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=fd, stderr=subprocess.STDOUT,
                             start_new_session=True, close_fds=True, env={**os.environ, **(env or {})})
    finally:
        os.close(fd)
    _children.append(p)
    return p


# --------------------------------------------------------------------------- helper programs

# Platform front end: a tiny HTTP server on every TCP port (UDP ports echo); HTTPS on the ports
# marked "/tls" with "--tls CERT KEY" (a certificate of the lab province's CA, see frontend_argv);
# "--delay-ms N" answers N ms late (the latency scenarios).
FRONTEND = r"""
import json, socket, ssl, sys, threading, time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
platform, addr, rest = sys.argv[1], sys.argv[2], sys.argv[3:]
cert = key = None
delay = 0.0
specs = []
while rest:
    a = rest.pop(0)
    if a == "--tls":
        cert, key = rest.pop(0), rest.pop(0)
    elif a == "--delay-ms":
        delay = float(rest.pop(0)) / 1000
    else:
        specs.append(a)
class H(BaseHTTPRequestHandler):
    server_version = "dcops-lab-frontend/1"
    def _answer(self, body_too):
        if delay:
            time.sleep(delay)
        if self.path.split("?")[0] in ("/", "/healthz"):
            code = 200
            body = json.dumps({"platform": platform, "address": addr,
                               "port": self.server.server_address[1], "status": "ok"}).encode() + b"\n"
        else:
            code, body = 404, b"not found\n"
        self.send_response(code)
        self.send_header("Content-Type", "application/json" if code == 200 else "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if body_too:
            self.wfile.write(body)
    def do_GET(self):
        self._answer(True)
    def do_HEAD(self):
        self._answer(False)
    def log_message(self, *a):
        pass
def udp(port):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind((addr, port))
    while True:
        data, peer = s.recvfrom(2048)
        s.sendto(data, peer)
class Server(ThreadingHTTPServer):
    tls = None
    def server_bind(self):  # no getfqdn(): no name lookups inside the lab
        import socketserver
        socketserver.TCPServer.server_bind(self)
        self.server_name, self.server_port = addr, self.server_address[1]
    def finish_request(self, request, client_address):
        if self.tls:  # the handshake in the request's own thread (a silent client blocks no one)
            request.settimeout(10)
            request = self.tls.wrap_socket(request, server_side=True)
        self.RequestHandlerClass(request, client_address, self)
    def handle_error(self, request, client_address):
        pass  # a refused handshake (a client that does not trust the CA) or a dropped connection
threads = []
for spec in specs:
    port, proto, *flags = spec.split("/")
    if proto == "UDP":
        threads.append(threading.Thread(target=udp, args=(int(port),), daemon=True))
    else:
        srv = Server((addr, int(port)), H)
        if "tls" in flags:
            srv.tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            srv.tls.minimum_version = ssl.TLSVersion.TLSv1_2
            srv.tls.load_cert_chain(cert, key)
        threads.append(threading.Thread(target=srv.serve_forever, daemon=True))
for t in threads:
    t.start()
print(f"{platform}: serving on {addr} ports {' '.join(specs)}", flush=True)
for t in threads:
    t.join()
"""

# Readiness probe, run inside the management namespace: reads "ADDR PORT TIMEOUT ssh|tcp"
# lines and answers "up ADDR PORT SECONDS" or "timeout ADDR PORT SECONDS".
PROBE = r"""
import socket, sys, threading, time
lock = threading.Lock()
def out(*a):
    with lock:
        print(*a, flush=True)
def probe(addr, port, timeout, ssh):
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        try:
            with socket.create_connection((addr, port), timeout=3) as s:
                if not ssh:
                    out("up", addr, port, round(time.monotonic() - t0, 3)); return
                s.settimeout(10)
                if s.recv(4).startswith(b"SSH-"):
                    out("up", addr, port, round(time.monotonic() - t0, 3)); return
        except OSError:
            pass
        time.sleep(0.3)
    out("timeout", addr, port, round(time.monotonic() - t0, 3))
threads = []
for line in sys.stdin:
    f = line.split()
    if len(f) == 4:
        t = threading.Thread(target=probe, args=(f[0], int(f[1]), float(f[2]), f[3] == "ssh"), daemon=True)
        t.start()
        threads.append(t)
if sys.argv[1:] == ["join"]:  # one-shot use: answer everything asked before exiting
    for t in threads:
        t.join()
"""


SHAPER = r"""
# Link shaper without netem: NFQUEUE (metadata only) -> hold each packet for the tier's
# delay +- jitter (keeping a tier's order), or drop it with the tier's loss probability.
# argv: QUEUE:DELAY_MS:JITTER_MS:LOSS_PCT ...
import heapq, os, random, select, socket, struct, sys, time

NETLINK_NETFILTER = 12
NFNL_SUBSYS_QUEUE = 3
NFQNL_MSG_PACKET, NFQNL_MSG_VERDICT, NFQNL_MSG_CONFIG = 0, 1, 2
NLM_F_REQUEST, NLM_F_ACK = 1, 4
NLMSG_ERROR = 2
NFQA_CFG_CMD, NFQA_CFG_PARAMS, NFQA_CFG_QUEUE_MAXLEN, NFQA_CFG_MASK, NFQA_CFG_FLAGS = 1, 2, 3, 4, 5
NFQA_PACKET_HDR, NFQA_VERDICT_HDR = 1, 2
NFQNL_CFG_CMD_BIND = 1
NFQNL_COPY_META = 1
NFQA_CFG_F_FAIL_OPEN = 1
NF_DROP, NF_ACCEPT = 0, 1

specs = {}
for a in sys.argv[1:]:
    q, d, j, l = a.split(":")
    specs[int(q)] = (float(d) / 1000, float(j) / 1000, float(l) / 100)

s = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, NETLINK_NETFILTER)
s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8 << 20)
s.bind((0, 0))
with __import__("contextlib").suppress(OSError):
    s.setsockopt(270, 5, 1)  # SOL_NETLINK, NETLINK_NO_ENOBUFS
seq = 0


def attr(t, payload):
    n = 4 + len(payload)
    return struct.pack("=HH", n, t) + payload + b"\0" * ((4 - n % 4) % 4)


def send(msg_type, queue, attrs, flags=NLM_F_REQUEST):
    global seq
    seq += 1
    body = struct.pack("=BBH", socket.AF_UNSPEC, 0, socket.htons(queue)) + b"".join(attrs)
    hdr = struct.pack("=IHHII", 16 + len(body), (NFNL_SUBSYS_QUEUE << 8) | msg_type, flags, seq, 0)
    s.send(hdr + body)


for q in specs:
    send(NFQNL_MSG_CONFIG, q, [attr(NFQA_CFG_CMD, struct.pack("=BBH", NFQNL_CFG_CMD_BIND, 0, 0))], NLM_F_REQUEST | NLM_F_ACK)
    send(NFQNL_MSG_CONFIG, q, [attr(NFQA_CFG_PARAMS, struct.pack(">IB", 0, NFQNL_COPY_META) + b"\0\0\0"),
                               attr(NFQA_CFG_QUEUE_MAXLEN, struct.pack(">I", 4096)),
                               attr(NFQA_CFG_MASK, struct.pack(">I", NFQA_CFG_F_FAIL_OPEN)),
                               attr(NFQA_CFG_FLAGS, struct.pack(">I", NFQA_CFG_F_FAIL_OPEN))], NLM_F_REQUEST | NLM_F_ACK)

heap = []
last = {q: 0.0 for q in specs}
print("delayer: queues", specs, flush=True)
while True:
    timeout = max(0.0, heap[0][0] - time.monotonic()) if heap else None
    r, _, _ = select.select([s], [], [], timeout)
    now = time.monotonic()
    if r:
        while True:
            try:
                data = s.recv(1 << 16, socket.MSG_DONTWAIT)
            except BlockingIOError:
                break
            except OSError as e:  # ENOBUFS: messages lost under load; fail-open covers a full queue
                print("recv:", e, flush=True)
                break
            off = 0
            while off + 16 <= len(data):
                ln, typ, flags, sq, pid = struct.unpack_from("=IHHII", data, off)
                if ln < 16:
                    break
                if typ == NLMSG_ERROR:
                    err = struct.unpack_from("=i", data, off + 16)[0]
                    if err:
                        print("netlink error", err, flush=True)
                elif typ == (NFNL_SUBSYS_QUEUE << 8) | NFQNL_MSG_PACKET:
                    q = socket.ntohs(struct.unpack_from("=H", data, off + 18)[0])
                    a = off + 20
                    pkt_id = None
                    while a + 4 <= off + ln:
                        alen, atype = struct.unpack_from("=HH", data, a)
                        if alen < 4:
                            break
                        if (atype & 0x7FFF) == NFQA_PACKET_HDR:
                            pkt_id = struct.unpack_from(">I", data, a + 4)[0]
                        a += (alen + 3) & ~3
                    if pkt_id is not None:
                        d, j, l = specs.get(q, (0, 0, 0))
                        if l and random.random() < l:
                            send(NFQNL_MSG_VERDICT, q, [attr(NFQA_VERDICT_HDR, struct.pack(">II", NF_DROP, pkt_id))])
                        else:
                            t = now + max(0.0, d + random.uniform(-j, j))
                            t = max(t, last[q])  # keep the order of a link's packets
                            last[q] = t
                            heapq.heappush(heap, (t, q, pkt_id))
                off += (ln + 3) & ~3
    now = time.monotonic()
    while heap and heap[0][0] <= now:
        _, q, pkt_id = heapq.heappop(heap)
        send(NFQNL_MSG_VERDICT, q, [attr(NFQA_VERDICT_HDR, struct.pack(">II", NF_ACCEPT, pkt_id))])
"""


class _Prober:
    """One probe process in the management namespace; events arrive on ``self.events``."""

    def __init__(self, mgmt_ns: str, st: LabState, log: Path):
        self.events: queue.Queue[tuple[str, str, int, float]] = queue.Queue()
        self.st = st
        self.p = subprocess.Popen(
            ["ip", "netns", "exec", mgmt_ns, sys.executable, "-c", PROBE],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=open(log, "a"), text=True, bufsize=1,
        )
        _children.append(self.p)
        _record(st, processes=[_proc_record("probe", self.p.pid, kind="probe", log=str(log))])
        self._t = threading.Thread(target=self._read, daemon=True)
        self._t.start()

    def _read(self) -> None:
        assert self.p.stdout is not None
        for line in self.p.stdout:
            f = line.split()
            if len(f) == 4:
                self.events.put((f[0], f[1], int(f[2]), float(f[3])))

    def ask(self, addr: str, port: int, timeout: float, ssh: bool) -> None:
        assert self.p.stdin is not None
        self.p.stdin.write(f"{addr} {port} {timeout} {'ssh' if ssh else 'tcp'}\n")
        self.p.stdin.flush()

    def close(self) -> None:
        with contextlib.suppress(OSError, ValueError):
            assert self.p.stdin is not None
            self.p.stdin.close()
        try:
            self.p.wait(5)
        except subprocess.TimeoutExpired:
            self.p.kill()
            self.p.wait()
        self.st.remove_process(self.p.pid)


def _wait_ports(prober: _Prober, targets: list[tuple[str, int]], timeout: float) -> dict[tuple[str, int], bool]:
    for a, p in targets:
        prober.ask(a, p, timeout, ssh=False)
    res: dict[tuple[str, int], bool] = {}
    deadline = time.monotonic() + timeout + 10
    while len(res) < len(targets) and time.monotonic() < deadline:
        try:
            kind, a, p, _ = prober.events.get(timeout=1)
        except queue.Empty:
            continue
        if (a, p) in targets:
            res[(a, p)] = kind == "up"
    return res


# --------------------------------------------------------------------------- up


def _check_environment() -> None:
    if os.geteuid() != 0:
        raise HostsError("the lab's WAN hosts need root (network namespaces, mounts, systemd-nspawn)")
    for t in ("systemd-nspawn", "ip", "tc", "ssh", "ssh-keygen", "ssh-keyscan", "mount", "nsenter"):
        tool(t)  # raises ToolMissing with the install hint
    if not _cgroup_roots():
        raise HostsError("no usable cgroup hierarchy under /sys/fs/cgroup")
    if "overlay" not in Path("/proc/filesystems").read_text():
        raise HostsError("the kernel has no overlay filesystem")


def _raise_limits(n_hosts: int, progress: Progress) -> None:
    """Machine-wide limits that hundreds of systemd hosts hit first (raised, never lowered).

    Every host's systemd and dbus take ~6 inotify instances, all counted for
    root: the default limit (128) stops the 20th host or so.
    """
    path = Path("/proc/sys/fs/inotify/max_user_instances")
    with contextlib.suppress(OSError, ValueError):
        cur = int(path.read_text())
        want = 1024 + 8 * n_hosts
        if cur < want:
            path.write_text(str(want))
            progress(f"[hosts] raised fs.inotify.max_user_instances {cur} -> {want} (each host's systemd needs ~6)")


def _layout(topo: Topology, sites: Any) -> dict[str, Any]:
    keys = {s.site_id: s.key for s in topo.sites}
    keys.update({"hub": "gw", "gw": "gw"})
    ssh = {s.site_id: s.ssh_address for s in topo.sites}
    ssh.update({"hub": topo.gateway.ssh_address, "gw": topo.gateway.ssh_address})
    machines = {s.site_id: s.machine for s in topo.sites}
    machines.update({"hub": topo.gateway.machine})
    if topo.standby:  # the standby hub (wan.hubs[1])
        keys.update({"hub2": "gw2", "gw2": "gw2"})
        ssh.update({"hub2": topo.standby.ssh_address, "gw2": topo.standby.ssh_address})
        machines.update({"hub2": topo.standby.machine})
    return {
        "sites": sites,
        "site_ids": [s.site_id for s in topo.sites],
        "netns": topo.netns_map(),
        "keys": keys,
        "ssh": ssh,
        "machines": machines,
        "frontends": {f.platform_id: f.address for f in topo.dc.frontends},
        "failed": {},
    }


def up(model: ProvinceFile, name: str, sites: int | Sequence[str] | None = None,
       progress: Progress = print, parallel: int | None = None) -> None:
    """Start the lab's WAN hosts (see the module docstring); prints progress lines.

    ``sites``: None for every site of ``wan.sites``, an int N for the first N,
    or a list of site ids.  Raises :class:`HostsFailed` (after starting all the
    others) when some hosts did not come up, :class:`HostsError` when nothing
    could be started, ``ToolMissing`` for a missing tool.
    """
    name = lab_name(name)
    _check_environment()
    topo = topology.build(model, name, sites)
    st = LabState.load(name)
    mine = [r for r in st.resources() if r.get("component") == COMPONENT] + st.processes(COMPONENT)
    if mine:
        alive = [p for p in st.processes(COMPONENT) if pid_alive(p["pid"], p.get("start_time"))]
        if alive and st.get("hosts.layout"):
            progress(f"[hosts] lab '{name}' already has its WAN hosts ({len(alive)} processes): nothing started")
            return
        raise HostsError(f"lab '{name}' has a record of WAN hosts that are not running (a crashed `up`?): "
                         f"run `dcops lab down --name {name}` first")
    clash = [n for n in topo.namespaces() if n in _existing_netns()]
    if clash:
        raise HostsError(f"network namespaces of lab '{name}' exist already but are not recorded: "
                         f"{', '.join(clash[:5])}{'...' if len(clash) > 5 else ''}; remove them "
                         f"(`ip netns del NAME`) or use another lab name")

    rootfs = image.ensure(progress)
    _raise_limits(len(topo.sites) + 1, progress)
    t0 = time.monotonic()
    mem0 = _used_bytes()
    n_hosts = len(topo.sites) + 1
    progress(f"[hosts] lab '{name}': {len(topo.sites)} sites + gateway + management host "
             f"({len(topo.namespaces())} namespaces)")

    hd = hosts_dir(name)
    md = netexec.mgmt_dir(name)
    _record(st, resources=[_res("dir", str(hd)), _res("dir", str(md))],
            values={"hosts.layout": _layout(topo, sites if not isinstance(sites, (list, tuple)) else list(sites))})
    for d in (hd, md):
        d.mkdir(parents=True, exist_ok=True, mode=0o700)
    # The hosts' own files (overlay upper dirs) live on a tmpfs: a host writes ~30 files at
    # boot and the disk here takes ~4 ms per file created or removed.
    fs = host_fs(name)
    _record(st, resources=[_res("mount", str(fs))])
    fs.mkdir(exist_ok=True, mode=0o700)
    size_mib = min(_meminfo()["MemTotal"] // 2**20 // 2, 256 + 32 * n_hosts)
    _mount(f"dcops-{name}-hosts", fs, "tmpfs", f"size={size_mib}m,mode=0700")
    logs_dir(name).mkdir()

    _make_key(name)
    _make_become_password(name)
    _make_network(topo, st, progress)
    _start_frontends(topo, st, progress)
    _start_time_source(model, topo, st, progress)

    failed: dict[str, str] = {}
    boot_times: dict[str, float] = {}
    uid, gid = image.user_ids(rootfs)
    pub = netexec.ssh_paths(name)["pub"].read_text()
    cg = _lab_cgroups(name)
    _record(st, resources=[_res("cgroup", str(c)) for c in cg])
    for c in cg:
        c.mkdir(exist_ok=True)

    prober = _Prober(topo.mgmt.netns, st, logs_dir(name) / "probe.log")
    try:
        _boot_all(topo, st, rootfs, uid, gid, pub, prober, failed, boot_times, progress, parallel)
        up_hosts = [h for h in topo.machines() if _host_id(h) not in failed]
        _scan_keys(name, topo, up_hosts, failed, progress)
        _frontends_ok(topo, prober, progress, failed)
    finally:
        prober.close()
    _write_ssh_config(name)

    dt = time.monotonic() - t0
    used = max(0, _used_bytes() - mem0)
    ok = n_hosts - len([h for h in failed if not h.startswith("frontend:")])
    lay = _layout(topo, sites if not isinstance(sites, (list, tuple)) else list(sites))
    lay["failed"] = failed
    lay["seconds"] = round(dt, 1)
    lay["memory_per_host_mib"] = round(used / max(ok, 1) / 2**20, 1)
    med = statistics.median(boot_times.values()) if boot_times else 0.0
    lay["boot_median_s"] = round(med, 2)
    sample = [h.key for h in topo.sites if h.site_id not in failed][:20]
    pss = [_host_pss(name, k) for k in sample]
    pss_med = statistics.median(pss) / 2**20 if pss else 0.0
    lay["host_pss_mib"] = round(pss_med, 1)
    _record(st, values={"hosts.layout": lay})
    progress(
        f"[hosts] {ok}/{n_hosts} hosts up in {dt:.1f}s ({dt / max(n_hosts, 1):.2f} s per host; sshd answered "
        f"{med:.2f}s after start, median); memory +{used / 2**20:.0f} MiB, {used / max(ok, 1) / 2**20:.1f} MiB per host "
        f"(a site host's processes: {pss_med:.1f} MiB PSS, median of {len(pss)})"
    )
    progress(f"[hosts] ssh from the management namespace: "
             f"ip netns exec {topo.mgmt.netns} ssh -F {netexec.ssh_paths(name)['config']} <address>")
    if failed:
        raise HostsFailed(failed)


def _host_pss(name: str, key: str) -> int:
    """Proportional memory (PSS, bytes) of every process of one host (its cgroup)."""
    total = 0
    roots = _cgroup_roots()
    if not roots:
        return 0
    for pid in _cgroup_pids(roots[0] / f"dcops-{name}" / key):
        total += process_pss(pid)
    return total


def process_pss(pid: int) -> int:
    """Proportional memory (PSS, bytes) of one process; 0 when it is gone."""
    with contextlib.suppress(OSError):
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
            if line.startswith("Pss:"):
                return int(line.split()[1]) * 1024
    return 0


def _host_id(h: SiteHost | Gateway) -> str:
    return h.site_id if isinstance(h, SiteHost) else "hub2" if h.key == "gw2" else "hub"


def _make_key(name: str) -> None:
    paths = netexec.ssh_paths(name)
    if paths["key"].exists() and paths["pub"].exists():
        return
    for k in ("key", "pub"):
        with contextlib.suppress(FileNotFoundError):
            paths[k].unlink()
    _run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", f"dcops-lab-{name}", "-f", str(paths["key"])])
    os.chmod(paths["key"], 0o600)


def _make_become_password(name: str) -> None:
    """The rollout account's sudo password on every host of this lab: made here, kept 0600 in the
    lab's management directory (the environment names the file), never printed; hosts get its
    SHA-512 crypt hash in /etc/shadow at creation."""
    paths = netexec.ssh_paths(name)
    if paths["become_password"].exists() and paths["become_hash"].exists():
        return
    import secrets

    pw = secrets.token_urlsafe(24)
    fd = os.open(paths["become_password"], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(pw + "\n")
    h = subprocess.run(["openssl", "passwd", "-6", "-stdin"], input=pw, capture_output=True, text=True, check=True).stdout.strip()
    fd = os.open(paths["become_hash"], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(h + "\n")


def _set_password_hash(root: Path, user: str, crypt_hash: str) -> None:
    """``user``'s password hash in a host's /etc/shadow (written through its overlay)."""
    shadow = root / "etc/shadow"
    lines = shadow.read_text().splitlines()
    out = [":".join([f[0], crypt_hash, *f[2:]]) if f[0] == user else ln for ln in lines for f in [ln.split(":")]]
    shadow.write_text("\n".join(out) + "\n")
    os.chmod(shadow, 0o640)


def _make_network(topo: Topology, st: LabState, progress: Progress) -> None:
    t0 = time.monotonic()
    nss = topo.namespaces()
    # `ip netns exec` puts /etc/netns/<ns>/resolv.conf over /etc/resolv.conf: no name server
    # in the lab, so a client's name lookup fails at once instead of timing out.
    clients = [topo.mgmt.netns, topo.dc.netns, topo.switch.netns] + [g.netns for g in topo.gateways]
    _record(st, resources=[_res("netns", n) for n in nss] + [_res("dir", f"/etc/netns/{n}") for n in clients])
    for n in clients:
        d = Path("/etc/netns") / n
        d.mkdir(parents=True, exist_ok=True)
        (d / "resolv.conf").write_text(image.RESOLV_CONF)
    _ip_batch([f"netns add {n}" for n in nss])

    sw, gw, mg, dc = topo.switch, topo.gateway, topo.mgmt, topo.dc
    links = [_res("link", f"{sw.netns}/{sw.bridge}", netns=sw.netns, ifname=sw.bridge),
             _res("link", f"{sw.netns}/{gw.switch_port}", netns=sw.netns, ifname=gw.switch_port),
             _res("link", f"{gw.netns}/{gw.mgmt_if}", netns=gw.netns, ifname=gw.mgmt_if),
             _res("link", f"{gw.netns}/{gw.dc_if}", netns=gw.netns, ifname=gw.dc_if)]
    for s in topo.sites:
        links.append(_res("link", f"{sw.netns}/{s.switch_port}", netns=sw.netns, ifname=s.switch_port))
        links.append(_res("link", f"{s.netns}/{s.lan_if}", netns=s.netns, ifname=s.lan_if))
    _record(st, resources=links)

    # The switch: a bridge with a port per site and one for the gateway.
    lines = ["link set lo up", f"link add name {sw.bridge} type bridge stp_state 0 forward_delay 0",
             f"link set {sw.bridge} up",
             f"link add name {gw.switch_port} type veth peer name {gw.wan_if} netns {gw.netns}",
             f"link set {gw.switch_port} master {sw.bridge} up"]
    for s in topo.sites:
        lines += [f"link add name {s.switch_port} type veth peer name {s.wan_if} netns {s.netns}",
                  f"link set {s.switch_port} master {sw.bridge} up"]
    _ip_batch(lines, sw.netns)
    shaped = _shape_links(topo, st, progress)

    # Gateway legs: WAN switch, management segment, platform segments. No default route.
    lines = ["link set lo up", f"addr add {gw.wan_cidr} dev {gw.wan_if}", f"link set {gw.wan_if} up",
             f"link add name {gw.mgmt_if} type veth peer name {mg.ifname} netns {mg.netns}",
             f"addr add {gw.mgmt_cidr} dev {gw.mgmt_if}", f"link set {gw.mgmt_if} up",
             f"link add name {gw.dc_if} type veth peer name {dc.ifname} netns {dc.netns}"]
    lines += [f"addr add {c} dev {gw.dc_if}" for c in gw.dc_cidrs]
    lines += [f"link set {gw.dc_if} up"]
    _ip_batch(lines, gw.netns)
    _ip_batch(["link set lo up", f"addr add {mg.cidr} dev {mg.ifname}", f"link set {mg.ifname} up",
               f"route add default via {mg.gateway} dev {mg.ifname}"], mg.netns)
    lines = ["link set lo up"] + [f"addr add {f.cidr} dev {dc.ifname}" for f in dc.frontends]
    lines += [f"link set {dc.ifname} up"]
    if dc.gateway:
        lines += [f"route add default via {dc.gateway} dev {dc.ifname}"]
    _ip_batch(lines, dc.netns)
    if topo.standby:
        _standby_network(topo, st)

    def site(s: SiteHost) -> None:
        _ip_batch(["link set lo up",
                   f"link add name {s.lan_if} type veth peer name {s.lan_client_if} netns {s.lan_netns}",
                   f"addr add {s.wan_cidr} dev {s.wan_if}", f"link set {s.wan_if} up",
                   f"addr add {s.lan_cidr} dev {s.lan_if}", f"link set {s.lan_if} up",
                   f"route add default via {s.gateway} dev {s.wan_if}"], s.netns)
        _ip_batch(["link set lo up", f"addr add {s.lan_client_cidr} dev {s.lan_client_if}",
                   f"link set {s.lan_client_if} up",
                   f"route add default via {s.lan_address} dev {s.lan_client_if}"], s.lan_netns)

    with ThreadPoolExecutor(max_workers=4) as ex:
        list(ex.map(site, topo.sites))
    # Routers forward: the gateway between its legs, each site between its LAN and the WAN.
    _set_forwarding([g.netns for g in topo.gateways] + [s.netns for s in topo.sites])
    neigh = _neighbour_room(len(topo.sites))
    if neigh:
        progress(f"[hosts] {neigh}")
    progress(f"[hosts] network: {len(nss)} namespaces, switch {sw.bridge} with {len(topo.sites) + 1} ports, "
             f"{shaped} ({time.monotonic() - t0:.1f}s)")


NEIGH_PER_SITE = 8  # neighbour entries a site costs: the management host's, the hub's, its own LAN's (with room)


def _neighbour_room(sites: int, root: Path = Path("/proc/sys/net/ipv4/neigh/default")) -> str:
    """Make room in the kernel's neighbour (ARP) table for this lab: on this kernel it is one
    table for every network namespace, sized by the initial namespace's gc_thresh1/2/3 (default
    128/512/1024). A 700-site lab needs more than 1024 entries: past it the kernel logs "neighbor
    table overflow", new connections time out, and a rollout of 700 sites stalled with 525
    connected. Thresholds are only raised, never lowered (another lab may need them); returns what
    was done, or "" when the table was large enough."""
    t3 = max(1024, sites * NEIGH_PER_SITE * 2)
    want = {"gc_thresh1": t3 // 8, "gc_thresh2": t3 // 2, "gc_thresh3": t3}
    raised = []
    for key, value in want.items():
        p = root / key
        try:
            have = int(p.read_text().split()[0])
            if have < value:
                p.write_text(f"{value}\n")
                raised.append(f"{key} {have}->{value}")
        except (OSError, ValueError):
            continue  # not this kernel's layout: the lab still starts; a very large one may then stall
    return ("neighbour table (shared by every namespace) raised for " + f"{sites} sites: " + ", ".join(raised)) if raised else ""


def _standby_network(topo: Topology, st: LabState) -> None:
    """The standby hub's legs: a port on the switch, and its own link into the management and the
    data-center namespaces (their eth1), where a route through it (metric 200) stands behind the
    primary's. Those namespaces ignore routes over a link that is down, so when a hub loses power
    (its links go down, as a switch port does when the box behind it is off) they route through
    the other: the data center's router does the same with its directly connected next hops."""
    sw, gw2, mg, dc = topo.switch, topo.standby, topo.mgmt, topo.dc
    _record(st, resources=[_res("link", f"{sw.netns}/{gw2.switch_port}", netns=sw.netns, ifname=gw2.switch_port),
                           _res("link", f"{gw2.netns}/{gw2.mgmt_if}", netns=gw2.netns, ifname=gw2.mgmt_if),
                           _res("link", f"{gw2.netns}/{gw2.dc_if}", netns=gw2.netns, ifname=gw2.dc_if)])
    _ip_batch([f"link add name {gw2.switch_port} type veth peer name {gw2.wan_if} netns {gw2.netns}",
               f"link set {gw2.switch_port} master {sw.bridge} up"], sw.netns)
    lines = ["link set lo up", f"addr add {gw2.wan_cidr} dev {gw2.wan_if}", f"link set {gw2.wan_if} up",
             f"link add name {gw2.mgmt_if} type veth peer name {mg.ifname2} netns {mg.netns}",
             f"addr add {gw2.mgmt_cidr} dev {gw2.mgmt_if}", f"link set {gw2.mgmt_if} up",
             f"link add name {gw2.dc_if} type veth peer name {dc.ifname2} netns {dc.netns}"]
    lines += [f"addr add {c} dev {gw2.dc_if}" for c in gw2.dc_cidrs]
    lines += [f"link set {gw2.dc_if} up"]
    _ip_batch(lines, gw2.netns)
    for ns, ifname, via in ((mg.netns, mg.ifname2, mg.gateway2), (dc.netns, dc.ifname2, dc.gateway2)):
        if not via:
            continue
        _run(["ip", "netns", "exec", ns, "sysctl", "-qw", "net.ipv4.conf.all.ignore_routes_with_linkdown=1"])
        _ip_batch([f"link set {ifname} up", f"route add {via}/32 dev {ifname}",
                   f"route add default via {via} dev {ifname} metric 200"], ns)


def _shape_links(topo: Topology, st: LabState, progress: Progress) -> str:
    """Tier link shapes (delay, jitter, loss, rate) on the switch side of each site's port.

    With netem in the kernel: a netem qdisc per shaped port.  Without it (this
    machine's kernel has no CONFIG_NET_SCH_NETEM): rate with a tbf qdisc, and
    delay, jitter and loss with a small NFQUEUE program in the switch namespace
    (bridged IPv4 packets toward a shaped port are queued to it and released after
    the tier's delay, or dropped with the tier's loss probability).  Either way the
    shape applies to traffic toward the site (once per round trip).
    """
    sw = topo.switch
    shaped = [s for s in topo.sites if s.netem is not None]
    if not shaped:
        return "no link shaping (no tier sets delay, loss or rate)"
    batch = "".join(f"qdisc add dev {s.switch_port} root {' '.join(topology.netem_args(s.netem))}\n" for s in shaped)
    p = _run(["tc", "-n", sw.netns, "-batch", "-"], check=False, input=batch)
    if p.returncode == 0:
        return f"netem on {len(shaped)} site links"
    if "unknown" not in (p.stderr + p.stdout):
        raise HostsError(f"tc netem failed: {(p.stderr or p.stdout).strip()[:500]}")
    # Fallback: tbf for rate, the NFQUEUE shaper for delay, jitter and loss.
    rated = [s for s in shaped if s.netem.rate_mbit]
    if rated:
        lines = []
        for s in rated:
            rate = s.netem.rate_mbit * 1_000_000
            burst = max(16_000, rate // 8 // 100)  # 10 ms worth of bytes
            lines.append(f"qdisc add dev {s.switch_port} root tbf rate {s.netem.rate_mbit}mbit "
                         f"burst {burst} latency 200ms")
        _run(["tc", "-n", sw.netns, "-batch", "-"], input="\n".join(lines) + "\n")
    queued = [s for s in shaped if s.netem.delay_ms or s.netem.jitter_ms or s.netem.loss_pct]
    if queued:
        tool("iptables")
        queues: dict[tuple, int] = {}
        for s in queued:
            queues.setdefault((s.netem.delay_ms, s.netem.jitter_ms, s.netem.loss_pct), len(queues))
        specs = [f"{q}:{d}:{j}:{l}" for (d, j, l), q in queues.items()]
        log = logs_dir(topo.lab) / "shaper.log"
        cg = [c / "shaper" for c in _lab_cgroups(topo.lab)]
        _record(st, resources=[_res("cgroup", str(c)) for c in _lab_cgroups(topo.lab)]
                + [_res("cgroup", str(c)) for c in cg])
        for c in cg:
            c.mkdir(parents=True, exist_ok=True)
        proc = _spawn(["ip", "netns", "exec", sw.netns, sys.executable, "-c", SHAPER, *specs], log, cg)
        _record(st, processes=[_proc_record("shaper", proc.pid, kind="shaper", log=str(log), cmd=specs)])
        _run(["ip", "netns", "exec", sw.netns, "sh", "-c",
              "echo 1 > /proc/sys/net/bridge/bridge-nf-call-iptables"])
        rules = ["*mangle"] + [
            f"-A FORWARD -m physdev --physdev-out {s.switch_port} -j NFQUEUE "
            f"--queue-num {queues[(s.netem.delay_ms, s.netem.jitter_ms, s.netem.loss_pct)]} --queue-bypass"
            for s in queued
        ] + ["COMMIT"]
        _run(["ip", "netns", "exec", sw.netns, "iptables-restore", "--noflush"], input="\n".join(rules) + "\n")
    return (f"link shapes on {len(shaped)} site links (no netem in this kernel: "
            f"{len(rated)} rate-limited with tbf, {len(queued)} delayed/lossy via the NFQUEUE shaper)")


def _start_frontends(topo: Topology, st: LabState, progress: Progress) -> None:
    logs = logs_dir(topo.lab)
    cg = [c / "frontends" for c in _lab_cgroups(topo.lab)]
    _record(st, resources=[_res("cgroup", str(c)) for c in _lab_cgroups(topo.lab)]
            + [_res("cgroup", str(c)) for c in cg])
    for c in cg:
        c.mkdir(parents=True, exist_ok=True)
    recs = []
    for f in topo.dc.frontends:
        log = logs / f"frontend-{f.platform_id}.log"
        argv = ["ip", "netns", "exec", topo.dc.netns, *frontend_argv(f, frontend_certificate(topo.lab, f))]
        p = _spawn(argv, log, cg)
        recs.append(_proc_record(f"frontend:{f.platform_id}", p.pid, kind="frontend", log=str(log),
                                 ports={str(port): port for port, _ in f.ports}, address=f.address))
    _record(st, processes=recs)
    tls = sum(1 for f in topo.dc.frontends if f.tls_ports)
    progress(f"[hosts] platform front ends: {len(recs)} HTTP servers in {topo.dc.netns} ({tls} with HTTPS, "
             f"certificates of the lab province's CA {pki.province_dir(topo.lab) / (pki.PROVINCE_CA + '.crt')})")


def frontend_certificate(lab: str, f: Frontend) -> "pki.Pair | None":
    """The serving certificate of a front end with TLS ports, from the lab province's CA (made on
    first use): its address (and its hostname) as subject alternative names."""
    if not f.tls_ports:
        return None
    d = pki.province_dir(lab)
    pki.province_ca(d)
    return pki.issue_server(d, f"frontend-{f.platform_id}", [f.address], [f.hostname] if f.hostname else [])


def frontend_argv(f: Frontend, tls: "pki.Pair | None" = None, delay_ms: int = 0) -> list[str]:
    """The command of a platform's front end (to run inside the data center's namespace): HTTP on
    its TCP ports, HTTPS with ``tls`` on its TLS ports, UDP echo; ``delay_ms``: answers that late."""
    if f.tls_ports and tls is None:
        raise ValueError(f"front end {f.platform_id}: TLS ports {list(f.tls_ports)} need a certificate")
    argv = [sys.executable, "-c", FRONTEND, f.platform_id, f.address]
    if tls is not None:
        argv += ["--tls", str(tls.cert), str(tls.key)]
    if delay_ms:
        argv += ["--delay-ms", str(int(delay_ms))]
    return argv + [f"{port}/{proto}" + ("/tls" if proto == "TCP" and port in f.tls_ports else "") for port, proto in f.ports]


def _start_time_source(model: ProvinceFile, topo: Topology, st: LabState, progress: Progress) -> None:
    """The hub's upstream time sources of the province file (wan.hub.time_upstream), as the
    province's GPS/NTP appliance would be: a chronyd in the management namespace serving the
    machine's clock (stratum 2, never setting it: -x) on each upstream address that lies in the
    management segment (added to the namespace's interface). An upstream elsewhere is not made:
    the hub then has no reachable upstream and DCOPS-NTP-003 says so."""
    import ipaddress

    mg = topo.mgmt
    seg = ipaddress.ip_network(mg.segment_cidr)
    addrs = []
    for t in model.wan.hub.time_upstream:
        try:
            a = ipaddress.ip_address(t.address)
        except ValueError:
            continue
        if a in seg and str(a) != mg.address:
            addrs.append(str(a))
    addrs = addrs[:1]  # one chronyd, one address (the hub needs one reachable source)
    if not addrs:
        return
    _ip_batch([f"addr add {a}/{seg.prefixlen} dev {mg.ifname}" for a in addrs], mg.netns)
    d = hosts_dir(topo.lab) / "timesource"
    d.mkdir(mode=0o700, exist_ok=True)
    cg = [c / "timesource" for c in _lab_cgroups(topo.lab)]
    _record(st, resources=[_res("cgroup", str(c)) for c in _lab_cgroups(topo.lab)] + [_res("cgroup", str(c)) for c in cg])
    for c in cg:
        c.mkdir(parents=True, exist_ok=True)
    conf = d / "chrony.conf"
    conf.write_text("# dcops lab: the province's authoritative time source (wan.hub.time_upstream)\n"
                    "local stratum 2\n" + "".join(f"bindaddress {a}\n" for a in addrs[:1])
                    + f"allow {mg.segment_cidr}\ncmdport 0\nbindcmdaddress /\npidfile {d}/chronyd.pid\n")
    log = logs_dir(topo.lab) / "timesource.log"
    chronyd = shutil.which("chronyd") or "/usr/sbin/chronyd"
    p = _spawn(["ip", "netns", "exec", mg.netns, chronyd, "-d", "-x", "-u", "root", "-f", str(conf)], log, cg)
    _record(st, processes=[_proc_record("timesource", p.pid, kind="timesource", log=str(log), address=addrs[0])])
    progress(f"[hosts] time source of the hub: chronyd on {addrs[0]} in {mg.netns}")


def _frontends_ok(topo: Topology, prober: _Prober, progress: Progress, failed: dict[str, str]) -> None:
    targets = [(f.address, port) for f in topo.dc.frontends for port, proto in f.ports if proto == "TCP"]
    res = _wait_ports(prober, targets, 20)
    bad = [f"{a}:{p}" for (a, p) in targets if not res.get((a, p))]
    for f in topo.dc.frontends:
        if any(f"{f.address}:{port}" in bad for port, _ in f.ports):
            failed[f"frontend:{f.platform_id}"] = (f"front end {f.address} does not answer from the management "
                                                   f"namespace; log {logs_dir(topo.lab)}")
    progress(f"[hosts] platform front ends answer from {topo.mgmt.netns}: {len(targets) - len(bad)}/{len(targets)}")


# --------------------------------------------------------------------------- booting hosts


ETC_HOSTS = """127.0.0.1\tlocalhost
127.0.1.1\t{hostname}
::1\tlocalhost ip6-localhost ip6-loopback
ff02::1\tip6-allnodes
ff02::2\tip6-allrouters
"""


class _Run:
    def __init__(self, host: SiteHost | Gateway, proc: subprocess.Popen, log: Path, t0: float):
        self.host, self.proc, self.log, self.t0 = host, proc, log, t0


# Every lab host is a container on one kernel, so they all share one boot ID, and systemd
# places a timer's firing within its AccuracySec window from the boot ID.  Without a spread,
# the daily timers of all hosts fire in the same second (at 700 sites, 437 logrotate processes
# and a load average of 675 at 00:00 UTC), which real hosts, each with its own boot ID, never
# do.  Each host gets a fixed delay of its own (hashed from its machine ID), spread over the day.
SPREAD_TIMERS: dict[str, str] = {
    "logrotate.timer": "# dcops lab: spread the hosts' daily rotation over the day (one boot ID for all of them)\n"
                       "[Timer]\nRandomizedDelaySec=23h\nFixedRandomDelay=true\nAccuracySec=1min\n",
    "systemd-tmpfiles-clean.timer": "# dcops lab: spread the hosts' cleanup after boot (they all boot within minutes)\n"
                                    "[Timer]\nRandomizedDelaySec=6h\nFixedRandomDelay=true\nAccuracySec=1min\n",
}


def _start_host(h: SiteHost | Gateway, st: LabState, rootfs: Path, uid: int, gid: int, pub: str) -> _Run:
    name = h.netns.rsplit("-", 1)[0]
    hdir = host_fs(name) / h.key
    root, upper, work = hdir / "root", hdir / "upper", hdir / "work"
    log = logs_dir(name) / f"{h.key}.log"
    cgroups = [c / h.key for c in _lab_cgroups(name)]
    _record(st, resources=[_res("dir", str(hdir)), _res("mount", str(root))]
            + [_res("cgroup", str(c)) for c in cgroups])
    for d in (upper, work, root):
        d.mkdir(parents=True, exist_ok=True)
    _mount("overlay", root, "overlay", f"lowerdir={rootfs},upperdir={upper},workdir={work}")
    # Identity of this host, written through the overlay (lands in its upper dir).
    (root / "etc/hostname").write_text(h.hostname + "\n")
    (root / "etc/hosts").write_text(ETC_HOSTS.format(hostname=h.hostname))
    (root / "etc/machine-id").write_text(os.urandom(16).hex() + "\n")
    for unit, text in SPREAD_TIMERS.items():
        d = root / "etc/systemd/system" / f"{unit}.d"
        d.mkdir(parents=True, exist_ok=True)
        (d / "dcops-lab-spread.conf").write_text(text)
    ak = root / "home" / image.USER / ".ssh" / "authorized_keys"
    ak.write_text(pub)
    os.chown(ak, uid, gid)
    os.chmod(ak, 0o600)
    # the checks' account logs in with the lab's key too; the rollout account's sudo password
    auid, agid = image.user_ids(rootfs, image.AUDIT_USER)
    ak = root / "home" / image.AUDIT_USER / ".ssh" / "authorized_keys"
    ak.write_text(pub)
    os.chown(ak, auid, agid)
    os.chmod(ak, 0o600)
    _set_password_hash(root, image.USER, netexec.ssh_paths(name)["become_hash"].read_text().strip())
    for c in cgroups:
        c.mkdir(parents=True, exist_ok=True)
    # What nspawn leaves behind when it is killed: its lock and propagation directory.
    stt = os.stat(root)
    leftovers = [_res("file", f"/run/systemd/nspawn/locks/inode-{stt.st_dev}:{stt.st_ino}"),
                 _res("dir", f"/run/systemd/nspawn/propagate/{h.machine}")]
    argv = [
        str(tool("systemd-nspawn")), "--quiet", "--boot", "--register=no", "--keep-unit",
        "--capability=CAP_NET_ADMIN", f"--network-namespace-path=/run/netns/{h.netns}",
        f"--machine={h.machine}", f"--directory={root}", "--resolv-conf=off", "--timezone=off",
        "--link-journal=no", "--console=read-only", "--bind=/dev/net/tun", "--setenv=SYSTEMD_COLORS=0",
    ]
    t0 = time.monotonic()
    # Each host has its own network namespace, so its /proc/sys/net is its own: leave it writable
    # (nspawn mounts /proc/sys read-only otherwise) so the rollout's network sysctls apply for real.
    p = _spawn(argv, log, cgroups, env={"SYSTEMD_NSPAWN_API_VFS_WRITABLE": "network"})
    _record(st, resources=leftovers,
            processes=[_proc_record(h.key, p.pid, kind="nspawn", host=_host_id(h), machine=h.machine,
                                    log=str(log), dir=str(hdir), cmd=argv)])
    return _Run(h, p, log, t0)


def _boot_all(topo: Topology, st: LabState, rootfs: Path, uid: int, gid: int, pub: str, prober: _Prober,
              failed: dict[str, str], boot_times: dict[str, float], progress: Progress,
              parallel: int | None) -> None:
    window = parallel or int(os.environ.get("DCOPS_LAB_PARALLEL", "0")) or 6 * (os.cpu_count() or 2)
    hosts = list(topo.machines())
    total = len(hosts)
    step = 1 if total <= 20 else max(5, total // 20)
    pending = deque(hosts)
    inflight: dict[str, _Run] = {}
    by_addr: dict[str, str] = {}
    done = 0
    t0 = time.monotonic()
    progress(f"[hosts] booting {total} hosts with systemd ({window} at a time)")

    def finish(hid: str, why: str | None) -> None:
        nonlocal done
        run = inflight.pop(hid)
        if why is None:
            done += 1
            boot_times[hid] = time.monotonic() - run.t0
            if done % step == 0 or done == total - len(failed):
                progress(f"[hosts] {done}/{total} up ({time.monotonic() - t0:.0f}s)")
        else:
            failed[hid] = why
            progress(f"[hosts] {hid} ({run.host.machine}) FAILED: {why}\n{_log_tail(run.log)}")

    while pending or inflight:
        while pending and len(inflight) < window:
            h = pending.popleft()
            hid = _host_id(h)
            try:
                run = _start_host(h, st, rootfs, uid, gid, pub)
            except (OSError, HostsError) as e:
                failed[hid] = f"could not start: {e}"
                progress(f"[hosts] {hid} FAILED to start: {e}")
                continue
            inflight[hid] = run
            by_addr[h.ssh_address] = hid
            prober.ask(h.ssh_address, 22, HOST_TIMEOUT, ssh=True)
        if prober.p.poll() is not None:
            raise HostsError(f"the readiness probe in the management namespace exited (code {prober.p.returncode}); "
                             f"log {logs_dir(topo.lab) / 'probe.log'}")
        try:
            kind, addr, _port, _secs = prober.events.get(timeout=0.5)
            hid = by_addr.get(addr, "")
            if hid in inflight:
                finish(hid, None if kind == "up" else f"sshd did not answer within {HOST_TIMEOUT:.0f}s")
        except queue.Empty:
            pass
        for hid, run in list(inflight.items()):
            rc = run.proc.poll()
            if rc is not None:
                finish(hid, f"systemd-nspawn exited with code {rc}; log {run.log}")


KEYSCAN = os.environ.get("DCOPS_LAB_KEYSCAN", "sample")  # "sample" or "all"


def _scan_keys(name: str, topo: Topology, hosts: list[SiteHost | Gateway], failed: dict[str, str],
               progress: Progress) -> None:
    """Fill known_hosts with the public host keys each host made at its first boot.

    The keys are read from each host's own filesystem (its overlay), so nothing is
    trusted on first use, and they are cross-checked against what the hosts' sshd
    serve with ``ssh-keyscan`` run inside the management namespace: the gateway
    and a few sites by default, every host with ``DCOPS_LAB_KEYSCAN=all``.  (A
    key scan costs ~0.45 s of CPU per host, sntrup761 key exchange included,
    which ssh-keyscan cannot turn off: 200 hosts took 77 s on this machine.)
    A host whose served key differs, or that has no key, is reported failed.
    """
    paths = netexec.ssh_paths(name)
    t0 = time.monotonic()
    known: dict[str, list[str]] = {}
    for h in hosts:
        root = host_fs(name) / h.key / "root"
        keys = []
        for t in image.HOSTKEY_TYPES:
            with contextlib.suppress(OSError):
                f = (root / f"etc/ssh/ssh_host_{t}_key.pub").read_text().split()
                keys.append(f"{f[0]} {f[1]}")
        if keys:
            known[_host_id(h)] = keys
        else:
            failed[_host_id(h)] = "sshd answered but the host has no host key"
    scan = [h for h in hosts if _host_id(h) in known]
    if KEYSCAN != "all":
        sites = [h for h in scan if isinstance(h, SiteHost)]
        scan = [h for h in scan if isinstance(h, Gateway)] + sites[:: max(1, len(sites) // 4)][:4]
    checked = 0
    if scan:
        p = subprocess.run(["ip", "netns", "exec", topo.mgmt.netns, "ssh-keyscan", "-T", "20", "-t", "ed25519",
                            "-f", "-"], input="\n".join(h.ssh_address for h in scan) + "\n",
                           capture_output=True, text=True)
        served: dict[str, set[str]] = {}
        for line in p.stdout.splitlines():
            f = line.split()
            if len(f) >= 3 and not line.startswith("#"):
                served.setdefault(f[0], set()).add(f"{f[1]} {f[2]}")
        for h in scan:
            got = served.get(h.ssh_address, set())
            if not got or not got <= set(known[_host_id(h)]):
                failed[_host_id(h)] = (f"ssh-keyscan of {h.ssh_address} from the management namespace "
                                       f"{'got no key' if not got else 'got a key the host did not make'}")
                known.pop(_host_id(h), None)
            else:
                checked += 1
    lines = []
    for h in hosts:
        if _host_id(h) not in known:
            continue
        aliases = [h.ssh_address] + ([h.wan_address] if isinstance(h, Gateway) else []) + [h.tunnel_address]
        lines += [f"{','.join(dict.fromkeys(aliases))} {k}" for k in known[_host_id(h)]]
    tmp = paths["known_hosts"].with_suffix(".tmp")
    tmp.write_text("\n".join(lines) + ("\n" if lines else ""))
    os.chmod(tmp, 0o600)
    os.replace(tmp, paths["known_hosts"])
    progress(f"[hosts] known_hosts: {len(lines)} keys of {len(known)} hosts, read from the hosts and "
             f"matched by ssh-keyscan from {topo.mgmt.netns} on {checked} of them ({time.monotonic() - t0:.1f}s)")


def _write_ssh_config(name: str) -> None:
    p = netexec.ssh_paths(name)
    p["config"].write_text(
        "# dcops lab: ssh from inside the management namespace (ip netns exec "
        f"{name}-mgmt ssh -F {p['config']} ADDRESS)\n"
        "Host *\n"
        f"  User {image.USER}\n"
        f"  IdentityFile {p['key']}\n"
        "  IdentitiesOnly yes\n"
        f"  UserKnownHostsFile {p['known_hosts']}\n"
        "  GlobalKnownHostsFile /dev/null\n"
        "  StrictHostKeyChecking yes\n"
        "  PasswordAuthentication no\n"
        "  KbdInteractiveAuthentication no\n"
        "  BatchMode yes\n"
        "  # sntrup761x25519 costs ~0.12 CPU-s per connection on each side; with hundreds of\n"
        "  # lab hosts on two cores that is minutes. curve25519 costs ~0.01 s.\n"
        "  KexAlgorithms curve25519-sha256,curve25519-sha256@libssh.org,sntrup761x25519-sha512@openssh.com\n"
        "  ConnectTimeout 10\n"
        "  LogLevel ERROR\n"
    )
    os.chmod(p["config"], 0o600)


# --------------------------------------------------------------------------- status


def status(name: str, probe: bool = True) -> list[dict[str, Any]]:
    """One dict per lab WAN host and part: ``host``, ``kind`` (site, gateway, lan, mgmt, dc, switch,
    frontend), ``netns``, ``address``, ``pid``, ``running`` (process alive / namespace present),
    ``ssh`` (sshd answers from the management namespace; None when not probed or not applicable).
    Empty when the lab has no WAN hosts."""
    name = lab_name(name)
    st = LabState.load(name)
    lay = st.get("hosts.layout")
    if not lay:
        return []
    nss = _existing_netns()
    procs = {p["name"]: p for p in st.processes(COMPONENT)}
    rows: list[dict[str, Any]] = []
    for part in ("sw", "mgmt", "dc"):
        ns = lay["netns"][part]
        rows.append({"host": part, "kind": {"sw": "switch", "mgmt": "mgmt", "dc": "dc"}[part], "netns": ns,
                     "address": lay["ssh"].get(part), "pid": None, "running": ns in nss, "ssh": None})
    for pid_, addr in lay.get("frontends", {}).items():
        p = procs.get(f"frontend:{pid_}")
        rows.append({"host": f"frontend:{pid_}", "kind": "frontend", "netns": lay["netns"]["dc"], "address": addr,
                     "pid": p["pid"] if p else None,
                     "running": bool(p and pid_alive(p["pid"], p.get("start_time"))), "ssh": None})
    for hid in ["hub", *(["hub2"] if "hub2" in lay["keys"] else []), *lay["site_ids"]]:
        key = lay["keys"][hid]
        p = procs.get(key)
        rows.append({
            "host": hid, "kind": "gateway" if hid in ("hub", "hub2") else "site", "netns": lay["netns"][hid],
            "machine": lay["machines"][hid], "address": lay["ssh"][hid], "pid": p["pid"] if p else None,
            "running": bool(p and pid_alive(p["pid"], p.get("start_time"))), "ssh": None,
            "failed": lay.get("failed", {}).get(hid),
        })
        if hid not in ("hub", "hub2"):
            lns = lay["netns"][f"lan:{hid}"]
            rows.append({"host": f"lan:{hid}", "kind": "lan", "netns": lns, "address": None, "pid": None,
                         "running": lns in nss, "ssh": None})
    if probe and lay["netns"]["mgmt"] in nss:
        targets = [r for r in rows if r["kind"] in ("site", "gateway") and r["running"]]
        if targets:
            p = subprocess.run(
                ["ip", "netns", "exec", lay["netns"]["mgmt"], sys.executable, "-c", PROBE, "join"],
                input="".join(f"{r['address']} 22 3 ssh\n" for r in targets), capture_output=True, text=True,
                timeout=60,
            )
            answered = {ln.split()[1] for ln in p.stdout.splitlines() if ln.startswith("up ")}
            for r in targets:
                r["ssh"] = r["address"] in answered
    return rows


def summary(rows: list[dict[str, Any]]) -> str:
    """A short text for ``dcops lab status``: counts and every host that is not fine."""
    if not rows:
        return "WAN hosts: none"
    hosts = [r for r in rows if r["kind"] in ("site", "gateway")]
    running = sum(1 for r in hosts if r["running"])
    ssh = sum(1 for r in hosts if r.get("ssh"))
    fe = [r for r in rows if r["kind"] == "frontend"]
    lines = [f"WAN hosts: {running}/{len(hosts)} running, {ssh}/{len(hosts)} answer ssh; "
             f"front ends {sum(1 for r in fe if r['running'])}/{len(fe)} running"]
    for r in rows:
        bad = not r["running"] or (r["kind"] in ("site", "gateway") and r.get("ssh") is False)
        if bad:
            lines.append(f"  {r['host']} ({r['kind']}, {r['netns']}): "
                         f"{'not running' if not r['running'] else 'no ssh answer'}"
                         + (f" ({r['failed']})" if r.get("failed") else ""))
    return "\n".join(lines)


# --------------------------------------------------------------------------- down


def _kill_cgroup(path: Path) -> None:
    """End every process left in a lab cgroup (v2: cgroup.kill; v1: SIGKILL each PID listed)."""
    if not path.exists():
        return
    kill = path / "cgroup.kill"
    if kill.exists():
        with contextlib.suppress(OSError):
            kill.write_text("1")
        return
    for pid in _cgroup_pids(path):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)


def _cgroup_pids(path: Path) -> list[int]:
    """PIDs in ``path`` and every cgroup below it; tolerant of cgroups that vanish during the walk
    (systemd inside a booting or stopping host creates and removes its own)."""
    out: list[int] = []
    for d, _, files in os.walk(path):
        if "cgroup.procs" in files:
            with contextlib.suppress(OSError):
                out += [int(x) for x in Path(d, "cgroup.procs").read_text().split()]
    return out


def _rmdir_cgroup(path: Path) -> bool:
    for d, _, _ in os.walk(path, topdown=False):
        with contextlib.suppress(OSError):
            os.rmdir(d)
    return not path.exists()


def _netns_in_use(names: list[str]) -> dict[str, list[int]]:
    """Named namespaces that some process is still in: name -> PIDs."""
    inode: dict[int, str] = {}
    for n in names:
        with contextlib.suppress(OSError):
            inode[os.stat(f"/run/netns/{n}").st_ino] = n
    out: dict[str, list[int]] = {}
    for d in os.listdir("/proc"):
        if d.isdigit():
            with contextlib.suppress(OSError):
                link = os.readlink(f"/proc/{d}/ns/net")  # "net:[4026532xyz]"
                n = inode.get(int(link[5:-1]))
                if n:
                    out.setdefault(n, []).append(int(d))
    return out


def _end_lab_clients(held: dict[str, list[int]], name: str, progress: Progress) -> dict[str, list[int]]:
    """End the clients that dcops commands left in the lab's namespaces: processes whose command
    line names this lab's directory (an SSH ControlMaster whose ControlPersist outlives the
    command, an Ansible worker whose parent was stopped). Each by its PID, SIGTERM then SIGKILL.
    Anything else (someone's shell in ``ip netns exec``) is left alone; returns what is left."""
    from .controlplane import stop_processes

    mark = str(lab_dir(name)).encode() + b"/"
    ours: list[dict[str, Any]] = []
    for pids in held.values():
        for pid in pids:
            with contextlib.suppress(OSError):
                if mark in Path(f"/proc/{pid}/cmdline").read_bytes():
                    ours.append({"pid": pid, "start_time": proc_start_time(pid), "name": "lab client"})
    if not ours:
        return held
    progress(f"[hosts] ending {len(ours)} client process(es) of this lab left in its namespaces "
             f"(pid {', '.join(str(p['pid']) for p in ours[:8])})")
    stop_processes(ours, timeout=5, progress=progress)
    return _netns_in_use(list(held))


def power_off(name: str, host: str, timeout: float = STOP_TIMEOUT) -> None:
    """Cut one lab host's power (a test's fault): its machine halts (nspawn's SIGTERM) and its links
    go down, as the switch ports and the neighbours' links of a box that lost power do. ``host``:
    a site id, ``hub`` or ``hub2``. ``down`` removes it like any other host."""
    name = lab_name(name)
    st = LabState.load(name)
    lay = st.get("hosts.layout") or {}
    key, ns = (lay.get("keys") or {}).get(host), (lay.get("netns") or {}).get(host)
    if not key or not ns:
        raise HostsError(f"lab '{name}' has no host '{host}'")
    p = {q["name"]: q for q in st.processes(COMPONENT)}.get(key)
    if p and pid_alive(p["pid"], p.get("start_time")):
        with contextlib.suppress(ProcessLookupError):
            os.kill(p["pid"], signal.SIGTERM)
        deadline = time.monotonic() + timeout
        while pid_alive(p["pid"], p.get("start_time")) and time.monotonic() < deadline:
            time.sleep(0.2)
    links = _run(["ip", "-n", ns, "-o", "link", "show"]).stdout
    names = [line.split(":")[1].strip().split("@")[0] for line in links.splitlines() if ":" in line]
    _ip_batch([f"link set {n} down" for n in names if n != "lo"], ns)


def down(name: str, progress: Progress = print) -> None:
    """Remove everything ``up`` made for lab ``name`` (by its record); safe to run twice.

    Order: processes (SIGTERM, then SIGKILL; then every process left in the
    hosts' cgroups), overlay mounts, what nspawn leaves when killed, links,
    namespaces, directories, and finally the record itself.  Raises
    :class:`HostsError` listing what could not be removed (the record of it is
    kept so that another ``down`` can finish).
    """
    name = lab_name(name)
    t0 = time.monotonic()
    st = LabState.load(name)
    procs = st.processes(COMPONENT)
    res = [r for r in st.resources() if r.get("component") == COMPONENT]
    if not procs and not res and not st.get("hosts.layout"):
        return
    problems: list[str] = []

    # 1. Processes by recorded PID: nspawn halts its container on SIGTERM.
    live = [p for p in procs if pid_alive(p["pid"], p.get("start_time"))]
    for p in live:
        with contextlib.suppress(ProcessLookupError):
            os.kill(p["pid"], signal.SIGTERM)
    deadline = time.monotonic() + STOP_TIMEOUT
    while live and time.monotonic() < deadline:
        time.sleep(0.2)
        live = [p for p in live if pid_alive(p["pid"], p.get("start_time"))]
    for p in live:
        progress(f"[hosts] {p['name']} (pid {p['pid']}) did not stop within {STOP_TIMEOUT:.0f}s: SIGKILL")
        with contextlib.suppress(ProcessLookupError):
            os.kill(p["pid"], signal.SIGKILL)
    phases = {"processes": time.monotonic() - t0}
    # 2. Anything still in the hosts' cgroups (container processes whose nspawn was killed).
    cgroups = [Path(r["id"]) for r in res if r["kind"] == "cgroup"]
    tops = [c for c in cgroups if not any(o != c and o in c.parents for o in cgroups)]
    for c in tops:
        if _cgroup_pids(c):
            _kill_cgroup(c)
    deadline = time.monotonic() + 10
    while True:
        left = [pid for c in tops for pid in _cgroup_pids(c)]
        alive_rec = [p for p in procs if pid_alive(p["pid"], p.get("start_time"))]
        if not left and not alive_rec:
            break
        if time.monotonic() > deadline:
            problems.append(f"processes still alive: {sorted(set(left))[:10]} {[p['pid'] for p in alive_rec][:10]}")
            break
        time.sleep(0.2)
    for c in tops:
        if not _rmdir_cgroup(c):
            problems.append(f"cgroup {c} not removed")
    phases["cgroups"] = time.monotonic() - t0 - sum(phases.values())
    # 3. Overlay mounts.
    mounted = set(_mounts())
    for r in reversed([r for r in res if r["kind"] == "mount"]):
        if r["id"] in mounted:
            if not _umount(r["id"]):
                problems.append(f"mount {r['id']} not unmounted")
    # 4. What a killed nspawn leaves in /run.
    for r in res:
        if r["kind"] == "file":
            with contextlib.suppress(FileNotFoundError):
                os.unlink(r["id"])
        elif r["kind"] == "dir" and r["id"].startswith("/run/systemd/nspawn/"):
            shutil.rmtree(r["id"], ignore_errors=True)
    phases["mounts"] = time.monotonic() - t0 - sum(phases.values())
    # 5. Links, then namespaces.  A namespace nobody is in any more goes away with every
    #    link in it (and a veth with its peer) when it is deleted; in one that some other
    #    process still holds (a shell left in `ip netns exec`), the recorded links are
    #    deleted one by one first, so no veth of the lab survives.
    existing = _existing_netns()
    held = _netns_in_use([r["id"] for r in res if r["kind"] == "netns" and r["id"] in existing])
    if held:
        held = _end_lab_clients(held, name, progress)
    for ns, pids in held.items():
        progress(f"[hosts] namespace {ns} is still used by pid {', '.join(map(str, pids[:5]))} "
                 f"(not started by the lab): deleting its links first")
        ifs = [r["ifname"] for r in res if r["kind"] == "link" and r.get("netns") == ns]
        cur = subprocess.run(["ip", "-n", ns, "-o", "link", "show"], capture_output=True, text=True).stdout
        have = {ln.split(":")[1].strip().split("@")[0] for ln in cur.splitlines() if ":" in ln}
        dels = [f"link del {i}" for i in ifs if i in have]
        if dels:
            _ip_batch(dels, ns, force=True)
    dels = [f"netns del {r['id']}" for r in res if r["kind"] == "netns" and r["id"] in existing]
    if dels:
        _ip_batch(dels, force=True)
    still = [r["id"] for r in res if r["kind"] == "netns" and r["id"] in _existing_netns()]
    if still:
        problems.append(f"namespaces not removed: {', '.join(still[:5])}")
    phases["network"] = time.monotonic() - t0 - sum(phases.values())
    # 6. Directories (never with a mount left below them).
    mounted = _mounts()
    for r in reversed([r for r in res if r["kind"] == "dir" and not r["id"].startswith("/run/")]):
        d = r["id"]
        if any(m == d or m.startswith(d.rstrip("/") + "/") for m in mounted):
            problems.append(f"{d} still has a mount below it: not removed")
            continue
        shutil.rmtree(d, ignore_errors=True)
    phases["files"] = time.monotonic() - t0 - sum(phases.values())
    # 7. The record.
    n_proc = len(procs)
    n_ns = len([r for r in res if r["kind"] == "netns"])
    n_mnt = len([r for r in res if r["kind"] == "mount"])
    if problems:
        raise HostsError(f"lab '{name}': WAN hosts not completely removed: " + "; ".join(problems))

    def change(d: dict[str, Any]) -> None:
        d["processes"] = [p for p in d["processes"] if p.get("component") != COMPONENT]
        d["resources"] = [r for r in d["resources"] if r.get("component") != COMPONENT]
        d["values"].pop("hosts.layout", None)

    st.update(change)
    progress(f"[hosts] down: {n_proc} processes ended, {n_mnt} mounts removed, {n_ns} namespaces removed "
             f"in {time.monotonic() - t0:.1f}s (" + ", ".join(f"{k} {v:.1f}s" for k, v in phases.items()) + ")")


if __name__ == "__main__":  # pragma: no cover - manual use: python -m infra.lab.hosts status NAME
    import argparse

    ap = argparse.ArgumentParser(prog="python -m infra.lab.hosts")
    ap.add_argument("action", choices=["up", "down", "status"])
    ap.add_argument("name")
    ap.add_argument("--province", default="stacks/province-lab.yaml")
    ap.add_argument("--sites", type=int, default=None)
    ap.add_argument("--scale", type=int, default=None, help="make a province with this many sites (tests)")
    a = ap.parse_args()
    if a.action == "up":
        from ..validate import load_province

        m = load_province(a.province)
        if a.scale:
            m = topology.scaled_province(m, a.scale)
        up(m, a.name, a.sites)
    elif a.action == "down":
        down(a.name)
        d = lab_dir(a.name)
        st = LabState.load(a.name)
        if d.exists() and st.is_empty() and not st.data["values"] and \
                {p.name for p in d.iterdir()} <= {"state.json", ".state.lock"}:
            shutil.rmtree(d)  # nothing else of this lab is left: no empty record either
    else:
        rows = status(a.name)
        print(summary(rows))
        print(json.dumps(rows, indent=1))
