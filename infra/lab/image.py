"""The base image of the lab's WAN hosts: a debootstrapped Debian 12 rootfs.

Every lab host (site endpoints and the data-center gateway) boots systemd from
an overlay whose lower (read-only, shared) directory is this image.  Hosts
reach no mirror, so every package the rollout roles need is installed here.

- Built once with ``debootstrap --variant=minbase bookworm`` from the Debian
  mirror this machine's apt is configured with, then configured for the lab
  (see :func:`_configure`).
- Cached in ``~/.cache/dcops/images/<hash>/rootfs`` where ``<hash>`` covers the
  package list and the recipe version: changing either builds a new image, an
  unchanged one is reused (idempotent; concurrent builders wait on a lock).
- No secrets are in the image: SSH host keys are removed and made inside each
  host at its first boot (``dcops-hostkeys.service``, before ``ssh.service``);
  ``/etc/machine-id`` is empty and written per host by :mod:`infra.lab.hosts`.

Usage::

    from infra.lab import image
    rootfs = image.ensure(progress=print)   # Path to the read-only lower dir
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import re
import shutil
import subprocess
import time
from pathlib import Path
from typing import Callable, Iterator

from ..paths import cache_dir, tool

Progress = Callable[[str], None]

SUITE = "bookworm"
DEFAULT_MIRROR = "http://deb.debian.org/debian"

PACKAGES: tuple[str, ...] = (
    "systemd",
    "systemd-sysv",
    "dbus",
    "openssh-server",
    "sudo",
    "libpam-google-authenticator",  # the named administrators' second factor (TOTP through PAM)
    "python3",  # Ansible modules and pyinfra facts need it
    "python3-apt",  # Ansible's apt/package facts (no mirror is reached)
    "iproute2",
    "iputils-ping",
    "nftables",
    "chrony",
    "rsyslog",
    "logrotate",  # the log server's retention (/etc/logrotate.d/dcops-remote, DCOPS-LOG-004)
    "wireguard-tools",
    "wireguard-go",  # the kernel has no WireGuard module: wg-quick falls back to it
    "prometheus-node-exporter",
    "curl",
    "netcat-openbsd",
    "procps",
    "ca-certificates",
)

# Bump when _configure changes: a new hash means a new image.
RECIPE = "7"

USER = "dcops"
AUDIT_USER = "dcops-audit"  # the host checks' account (read-only: the rollout lets it run the evidence collector only)

# Units that cannot work in a container, or only slow the boot down.
MASKED_UNITS: tuple[str, ...] = (
    "console-getty.service",
    "getty.target",
    "getty@.service",
    "systemd-udevd.service",
    "systemd-udev-trigger.service",
    "systemd-udev-settle.service",
    "systemd-hwdb-update.service",
    "systemd-modules-load.service",
    "kmod-static-nodes.service",
    "systemd-remount-fs.service",
    "systemd-journald-audit.socket",
    "systemd-logind.service",
    "systemd-networkd-wait-online.service",
    "systemd-timesyncd.service",
    "systemd-firstboot.service",
    "systemd-binfmt.service",
    "systemd-pstore.service",
    "apt-daily.timer",
    "apt-daily-upgrade.timer",
    "dpkg-db-backup.timer",
    "e2scrub_all.timer",
    "e2scrub_reap.service",
    "fstrim.timer",
    "man-db.timer",
)

# Host keys are made inside each host at its first boot.  Ed25519 and ECDSA
# only: an RSA-3072 key costs 0.4-1.7 CPU-seconds to make (minutes of CPU for
# 200 hosts on two cores); OpenSSH and paramiko clients use Ed25519.
HOSTKEY_TYPES = ("ed25519", "ecdsa")
HOSTKEYS_UNIT = """\
[Unit]
Description=SSH host keys made on this host at first boot (dcops lab)
DefaultDependencies=no
After=local-fs.target
Before=ssh.service sysinit.target
ConditionPathExists=!/etc/ssh/ssh_host_ed25519_key

[Service]
Type=oneshot
RemainAfterExit=yes
""" + "".join(
    f"ExecStart=/usr/bin/ssh-keygen -q -t {t} -N \"\" -f /etc/ssh/ssh_host_{t}_key\n" for t in HOSTKEY_TYPES
) + """
[Install]
RequiredBy=ssh.service
"""
SSHD_HOSTKEYS = "# dcops lab: the host keys made at first boot (dcops-hostkeys.service)\n" + "".join(
    f"HostKey /etc/ssh/ssh_host_{t}_key\n" for t in HOSTKEY_TYPES
)

# chrony.service carries ConditionCapability=CAP_SYS_TIME, which a container
# lacks: it would silently not run.  In the lab chronyd runs with -x (it
# synchronises without touching the machine's clock), so the role's chrony
# configuration is exercised for real.
CHRONY_DROPIN = """\
# dcops lab: containers may not set the clock; chronyd -x keeps time without setting it.
[Unit]
ConditionCapability=

[Service]
ExecStart=
ExecStart=!/usr/sbin/chronyd $DAEMON_OPTS -x
"""

JOURNALD_DROPIN = """\
# dcops lab: small volatile journal (hundreds of hosts share this machine's RAM).
[Journal]
Storage=volatile
RuntimeMaxUse=8M
"""

RESOLV_CONF = """\
# dcops lab host: no DNS inside the lab (hosts reach only lab addresses).
options timeout:1 attempts:1
"""


class ImageError(RuntimeError):
    """Building the base image failed; the message says where the log is."""


def image_key(packages: tuple[str, ...] = PACKAGES) -> str:
    h = hashlib.sha256(("\n".join(sorted(packages)) + f"\nsuite={SUITE}\nrecipe={RECIPE}\n").encode())
    return h.hexdigest()[:16]


def image_dir(packages: tuple[str, ...] = PACKAGES) -> Path:
    return cache_dir() / "images" / image_key(packages)


def rootfs_path(packages: tuple[str, ...] = PACKAGES) -> Path:
    return image_dir(packages) / "rootfs"


def is_built(packages: tuple[str, ...] = PACKAGES) -> bool:
    return (image_dir(packages) / "complete").exists()


def configured_mirror() -> str:
    """The Debian mirror this machine's apt uses for ``bookworm`` main (not security)."""
    texts: list[str] = []
    for p in [Path("/etc/apt/sources.list"), *sorted(Path("/etc/apt/sources.list.d").glob("*"))]:
        with contextlib.suppress(OSError):
            if p.is_file() and p.suffix in (".list", ".sources", ""):
                texts.append(p.read_text())
    for text in texts:
        # one-line format: deb [opts] URI SUITE COMPONENTS...
        for m in re.finditer(r"^\s*deb\s+(?:\[[^\]]*\]\s+)?(\S+)\s+(\S+)\s+(.*)$", text, re.M):
            uri, suite, comps = m.group(1), m.group(2), m.group(3).split()
            if suite == SUITE and "main" in comps and "security" not in uri:
                return uri.rstrip("/")
        # deb822 format
        for stanza in re.split(r"\n\s*\n", text):
            fields = dict(
                (k.strip().lower(), v.strip())
                for k, v in (ln.split(":", 1) for ln in stanza.splitlines() if ":" in ln and not ln.startswith("#"))
            )
            if "deb" not in fields.get("types", "").split():
                continue
            suites = fields.get("suites", "").split()
            comps = fields.get("components", "").split()
            for uri in fields.get("uris", "").split():
                if SUITE in suites and "main" in comps and "security" not in uri:
                    return uri.rstrip("/")
    return DEFAULT_MIRROR


@contextlib.contextmanager
def _lock(path: Path) -> Iterator[None]:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)


def ensure(progress: Progress = print, packages: tuple[str, ...] = PACKAGES) -> Path:
    """The base image's rootfs, built first if needed (idempotent). Returns the rootfs path."""
    d = image_dir(packages)
    if is_built(packages):
        return d / "rootfs"
    if os.geteuid() != 0:
        raise ImageError("building the lab image needs root (debootstrap); run as root")
    debootstrap = tool("debootstrap")
    with _lock(d.parent / f"{d.name}.lock"):
        if is_built(packages):  # another process built it while we waited
            return d / "rootfs"
        tmp = d / "rootfs.tmp"
        log = d / "build.log"
        if tmp.exists():
            shutil.rmtree(tmp)
        d.mkdir(parents=True, exist_ok=True)
        mirror = configured_mirror()
        t0 = time.monotonic()
        progress(f"[image] building the lab base image {d.name} (debootstrap {SUITE} minbase from {mirror}; "
                 f"{len(packages)} packages; once, then cached in {d})")
        cmd = [
            str(debootstrap), "--variant=minbase", f"--include={','.join(packages)}",
            SUITE, str(tmp), mirror,
        ]
        _run_logged(cmd, log, progress, t0)
        progress(f"[image] configuring the image for the lab ({time.monotonic() - t0:.0f}s)")
        with open(log, "a") as lf:
            _configure(tmp, lf)
        os.rename(tmp, d / "rootfs")
        (d / "packages").write_text("\n".join(packages) + "\n")
        (d / "complete").write_text(time.strftime("%Y-%m-%dT%H:%M:%S") + "\n")
        size = _du(d / "rootfs")
        progress(f"[image] ready in {time.monotonic() - t0:.0f}s: {d / 'rootfs'} ({size / 2**20:.0f} MiB)")
    return d / "rootfs"


def _du(path: Path) -> int:
    out = subprocess.run(["du", "-sb", str(path)], capture_output=True, text=True)
    try:
        return int(out.stdout.split()[0])
    except (IndexError, ValueError):
        return 0


def _run_logged(cmd: list[str], log: Path, progress: Progress, t0: float) -> None:
    """Run debootstrap, keep its whole output in ``log``, show one line per phase."""
    seen: set[str] = set()
    with open(log, "w") as lf:
        lf.write("$ " + " ".join(cmd) + "\n")
        lf.flush()
        p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                             stdin=subprocess.DEVNULL, env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"})
        assert p.stdout is not None
        for line in p.stdout:
            lf.write(line)
            m = re.match(r"I: (Retrieving|Validating|Extracting|Installing|Unpacking|Configuring|Resolving|Checking|Found)\w*", line)
            if m:
                phase = m.group(1)
                if phase not in seen:
                    seen.add(phase)
                    progress(f"[image] debootstrap: {phase.lower()}... ({time.monotonic() - t0:.0f}s)")
        rc = p.wait()
    if rc != 0:
        tail = "".join(log.read_text().splitlines(keepends=True)[-15:])
        raise ImageError(f"debootstrap failed (exit {rc}); full log: {log}\n{tail}")


def _chroot(root: Path, argv: list[str], lf) -> None:
    subprocess.run(["chroot", str(root), *argv], check=True, stdout=lf, stderr=subprocess.STDOUT,
                   stdin=subprocess.DEVNULL, env={"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "LANG": "C.UTF-8"})


def _write(path: Path, text: str, mode: int = 0o644) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.is_symlink() or path.exists():
        path.unlink()
    path.write_text(text)
    os.chmod(path, mode)


def _configure(root: Path, lf) -> None:
    """Make the debootstrapped tree a lab host image (no per-host data, no secrets)."""
    # SSH host keys are made inside each host at its first boot.
    for k in (root / "etc/ssh").glob("ssh_host_*"):
        k.unlink()
    _write(root / "etc/systemd/system/dcops-hostkeys.service", HOSTKEYS_UNIT)
    _write(root / "etc/ssh/sshd_config.d/00-dcops-lab-hostkeys.conf", SSHD_HOSTKEYS)
    _write(root / "etc/systemd/system/chrony.service.d/dcops-lab.conf", CHRONY_DROPIN)
    _write(root / "etc/systemd/journald.conf.d/dcops-lab.conf", JOURNALD_DROPIN)
    # The login user of Ansible and pyinfra: key-only SSH, sudo WITH a password (never NOPASSWD):
    # each lab host gets the lab's own password hash at creation (infra.lab.hosts), the engines
    # get the password from the lab's environment (wan.become.password, a 0600 file of the lab).
    _chroot(root, ["useradd", "--create-home", "--shell", "/bin/bash", USER], lf)
    _chroot(root, ["usermod", "-p", "*", USER], lf)  # no password, but not "locked" for sshd
    _write(root / f"etc/sudoers.d/{USER}", f"# dcops lab: the rollout account authenticates to sudo (its password)\n"
           f"{USER} ALL=(ALL:ALL) ALL\n", 0o440)
    # The checks' account: key-only, no sudo of its own (the rollout's sudoers lets it run the
    # evidence collector, nothing else).
    _chroot(root, ["useradd", "--create-home", "--shell", "/bin/sh", AUDIT_USER], lf)
    _chroot(root, ["usermod", "-p", "*", AUDIT_USER], lf)
    for u in (USER, AUDIT_USER):
        ssh_dir = root / "home" / u / ".ssh"
        ssh_dir.mkdir(mode=0o700, exist_ok=True)
        uid, gid = _ids(root, u)
        os.chown(ssh_dir, uid, gid)
    # Per-host identity is written by the lab at host creation.
    _write(root / "etc/machine-id", "")
    with contextlib.suppress(FileNotFoundError):
        (root / "var/lib/dbus/machine-id").unlink()
    with contextlib.suppress(FileNotFoundError):
        (root / "etc/hostname").unlink()
    _write(root / "etc/resolv.conf", RESOLV_CONF)
    systemctl = ["systemctl", "--root", str(root)]
    subprocess.run([*systemctl, "enable", "dcops-hostkeys.service", "ssh.service"], check=True,
                   stdout=lf, stderr=subprocess.STDOUT)
    subprocess.run([*systemctl, "mask", *MASKED_UNITS], check=True, stdout=lf, stderr=subprocess.STDOUT)
    subprocess.run([*systemctl, "set-default", "multi-user.target"], check=True, stdout=lf,
                   stderr=subprocess.STDOUT)
    # No package cache or lists: hosts never reach a mirror.
    _chroot(root, ["apt-get", "clean"], lf)
    lists = root / "var/lib/apt/lists"
    for f in lists.glob("*"):
        if f.is_file():
            f.unlink()


def _ids(root: Path, user: str) -> tuple[int, int]:
    for line in (root / "etc/passwd").read_text().splitlines():
        f = line.split(":")
        if f[0] == user:
            return int(f[2]), int(f[3])
    raise ImageError(f"user {user} missing in the image")


def user_ids(rootfs: Path, user: str = USER) -> tuple[int, int]:
    """uid and gid of a login user inside the image (default the ``dcops`` login user)."""
    return _ids(rootfs, user)


if __name__ == "__main__":  # python -m infra.lab.image
    print(ensure())
