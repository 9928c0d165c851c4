"""Publish the lab's control-plane ports inside its management namespace.

The lab's API servers and etcd listen on this machine's 127.0.0.1.  An operator's
workstation reaches a real data center's API servers over the management network; in
the lab, every dcops command runs inside ``<lab>-mgmt`` (the environment's
``management_netns``), whose loopback is its own.  This process listens on
``127.0.0.1:PORT`` *inside* that namespace (the listening socket is made by a thread that
joined it) and connects each accepted connection to ``127.0.0.1:PORT`` of the machine's
namespace, where it was started.  Same port numbers, so the lab's kubeconfigs work in both
places; TLS passes through untouched (the certificates' 127.0.0.1 SAN still matches).

Nothing else is reachable this way: only the listed loopback ports, only from the lab's
own namespace.  Run as ``python -m infra.lab.portfwd NETNS PORT [PORT...]``; the lab
records its PID and ``dcops lab down`` ends it.
"""

from __future__ import annotations

import ctypes
import os
import signal
import socket
import sys
import threading

CLONE_NEWNET = 0x40000000


def _listen_in(netns: str, port: int) -> socket.socket:
    box: dict = {}

    def run() -> None:
        try:
            libc = ctypes.CDLL(None, use_errno=True)
            fd = os.open(f"/run/netns/{netns}", os.O_RDONLY | os.O_CLOEXEC)
            try:
                if libc.setns(fd, CLONE_NEWNET) != 0:
                    raise OSError(ctypes.get_errno(), f"setns {netns}")
            finally:
                os.close(fd)
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            s.bind(("127.0.0.1", port))
            s.listen(128)
            box["sock"] = s
        except BaseException as e:  # reported by the caller
            box["error"] = e

    t = threading.Thread(target=run)
    t.start()
    t.join()
    if "error" in box:
        raise box["error"]
    return box["sock"]


def _pipe(a: socket.socket, b: socket.socket) -> None:
    try:
        while True:
            data = a.recv(65536)
            if not data:
                break
            b.sendall(data)
    except OSError:
        pass
    finally:
        for s in (a, b):
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


def _serve(listener: socket.socket, port: int) -> None:
    while True:
        try:
            conn, _ = listener.accept()
        except OSError:
            return
        try:
            up = socket.create_connection(("127.0.0.1", port), timeout=10)
            up.settimeout(None)
        except OSError:
            conn.close()
            continue

        def both(c: socket.socket = conn, u: socket.socket = up) -> None:
            t = threading.Thread(target=_pipe, args=(u, c), daemon=True)
            t.start()
            _pipe(c, u)
            t.join()
            c.close()
            u.close()

        threading.Thread(target=both, daemon=True).start()


def main(argv: list[str]) -> int:
    if len(argv) < 2:
        print("usage: python -m infra.lab.portfwd NETNS PORT [PORT...]", file=sys.stderr)
        return 2
    netns, ports = argv[0], [int(p) for p in argv[1:]]
    listeners = [(_listen_in(netns, p), p) for p in ports]
    print(f"forwarding {netns} 127.0.0.1:{','.join(map(str, ports))} -> 127.0.0.1", flush=True)
    signal.signal(signal.SIGTERM, lambda *_: os._exit(0))
    threads = [threading.Thread(target=_serve, args=lp, daemon=True) for lp in listeners]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
