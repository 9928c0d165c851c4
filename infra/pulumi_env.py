"""Running the ``pulumi`` CLI against a lab: environment, stack, and actions.

A lab has its own Pulumi file backend and passphrase secrets provider, both in
the lab directory, so nothing leaves the machine and two labs never share
state::

    <lab dir>/pulumi-state/    PULUMI_BACKEND_URL=file://...
    <lab dir>/passphrase       PULUMI_CONFIG_PASSPHRASE_FILE (0600, made by `lab up`, never printed)
    <lab dir>/pulumi-home/     PULUMI_HOME (workspace settings, no plugin is ever downloaded)
    <lab dir>/Pulumi.lab.yaml  the lab stack's config (`--config-file`): a copy of the
                               repository's stack config plus the lab's encryption salt,
                               so the repository's files are never rewritten

Use it from Python::

    from infra.pulumi_env import lab_env, pulumi, provision
    provision("dcops", "up")                      # stack select/init `lab`, then `pulumi up`
    pulumi(["stack", "output", "--json"], "dcops", capture=True)

or from a shell: ``eval "$(dcops lab env)"`` then plain ``pulumi up``.
"""

from __future__ import annotations

import contextlib
import os
import re
import secrets
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Iterator, Sequence, Union

from .paths import REPO, lab_dir, lab_name, tool, tools_bin
from .pulumi_plugins import link_plugins

if TYPE_CHECKING:
    from .environment import Stack

STACK = "lab"
ACTIONS = ("up", "preview", "refresh", "destroy")


class PulumiError(RuntimeError):
    """A pulumi command failed; carries the exit code and the tail of its output."""

    def __init__(self, args: Sequence[str], code: int, output: str):
        self.code = code
        self.output = output
        tail = "\n".join(output.strip().splitlines()[-25:])
        super().__init__(f"`pulumi {' '.join(args)}` exited {code}\n{tail}")


# --------------------------------------------------------------------------- files


def passphrase_path(name: str | None = None) -> Path:
    return lab_dir(name) / "passphrase"


def state_dir(name: str | None = None) -> Path:
    return lab_dir(name) / "pulumi-state"


def home_dir(name: str | None = None) -> Path:
    return lab_dir(name) / "pulumi-home"


def config_file(name: str | None = None) -> Path:
    return lab_dir(name) / f"Pulumi.{STACK}.yaml"


def ensure_passphrase(name: str | None = None) -> Path:
    """Make the lab's Pulumi passphrase (0600) if it has none. Never prints it."""
    p = passphrase_path(name)
    p.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    if not p.exists():
        fd = os.open(p, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(secrets.token_urlsafe(32))
    os.chmod(p, 0o600)
    return p


def prepare(name: str | None = None) -> None:
    """Everything Pulumi needs in the lab dir (called by `lab up`): passphrase, backend, home, config."""
    ensure_passphrase(name)
    for d in (state_dir(name), home_dir(name)):
        d.mkdir(parents=True, exist_ok=True, mode=0o700)
    link_plugins(home_dir(name))
    quiet_automatic_log(home_dir(name))
    ensure_config_file(name)


def _project_file() -> Path:
    return REPO / "Pulumi.yaml"


def repo_stack_config() -> Path | None:
    """The repository's config for the ``lab`` stack (``stackConfigDir`` of Pulumi.yaml honoured)."""
    proj = _project_file()
    base = REPO
    if proj.exists():
        import yaml

        doc = yaml.safe_load(proj.read_text()) or {}
        if doc.get("stackConfigDir"):
            base = REPO / doc["stackConfigDir"]
    p = base / f"Pulumi.{STACK}.yaml"
    return p if p.exists() else None


def ensure_config_file(name: str | None = None) -> Path:
    """The lab's stack config file: seeded from the repository's one (without any salt)."""
    dst = config_file(name)
    if not dst.exists():
        src = repo_stack_config()
        text = src.read_text() if src else "config: {}\n"
        text = re.sub(r"(?m)^(encryptionsalt|encryptedkey|secretsprovider):.*\n", "", text)
        dst.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        fd = os.open(dst, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(text)
    return dst


# --------------------------------------------------------------------------- environment


def _base_env(base: dict[str, str] | None) -> dict[str, str]:
    env = dict(os.environ if base is None else base)
    for k in ("PULUMI_ACCESS_TOKEN", "PULUMI_CONFIG_PASSPHRASE", "PULUMI_CONFIG_PASSPHRASE_FILE", "PULUMI_BACKEND_URL",
              "PULUMI_HOME", "KUBECONFIG", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN",
              "AWS_PROFILE", "AWS_SHARED_CREDENTIALS_FILE", "AWS_CONFIG_FILE", "AWS_CA_BUNDLE"):
        env.pop(k, None)
    venv_bin = Path(sys.executable).parent
    path = [str(tools_bin()), str(venv_bin)] + [p for p in env.get("PATH", "").split(os.pathsep) if p]
    env.update(
        {
            "PULUMI_SKIP_UPDATE_CHECK": "true",
            "PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION": "true",
            # The state is written once, when the command ends (also when it fails or is interrupted),
            # not after every step: see SKIP_CHECKPOINTS_WHY. PULUMI_SKIP_CHECKPOINTS=false in the
            # caller's environment writes it after every step again.
            "PULUMI_SKIP_CHECKPOINTS": env.get("PULUMI_SKIP_CHECKPOINTS") or "true",
            "PULUMI_DIY_BACKEND_NO_LEGACY_WARNING": "true",
            "PULUMI_SELF_MANAGED_STATE_NO_LEGACY_WARNING": "true",
            "PATH": os.pathsep.join(dict.fromkeys(path)),
            "PYTHONUNBUFFERED": "1",
        }
    )
    if "VIRTUAL_ENV" not in env and (venv_bin.parent / "pyvenv.cfg").exists():
        env["VIRTUAL_ENV"] = str(venv_bin.parent)
    return env


SKIP_CHECKPOINTS_WHY = """\
Pulumi's engine rewrites the whole checkpoint (every resource's inputs, outputs and the stack trace
the SDK records for it: ~5 KiB each) before and after every step, so an up of N objects writes
about 2N whole checkpoints: for the full province (147 resources) 70% of the engine's CPU, 5.4 of
its 6.5 s CPU (file backend; a shared S3 backend sends each one over the network). With
PULUMI_SKIP_CHECKPOINTS=true the engine writes the state once, when the command ends, including
when a step failed or the command was interrupted (Ctrl-C). Only a run killed outright (SIGKILL,
power loss) loses the record of what it made; every object dcops declares has a fixed name and the
provider applies server-side (an upsert), so `dcops provision --recover` (clear the lock, refresh)
then `dcops provision` takes what the killed run made back into the stack in place: same objects,
nothing replaced (tests/test_pulumi_lab.py kills an up midway and checks exactly that).
"""


def _truthy(value: str | None) -> bool:
    return (value or "") not in ("", "0", "false", "off")


def quiet_automatic_log(home: Path, keep: bool | None = None) -> None:
    """Turn off Pulumi's automatic debug log in ``home`` (``<PULUMI_HOME>/logs``).

    Since 3.2xx the CLI copies every verbose log line of the engine, at debug level, into a gzipped
    and encrypted file under ``$PULUMI_HOME/logs`` on every command, whatever ``-v`` says: for a
    no-change ``pulumi up`` of the full province that formatting, compression and encryption was
    1.0 of the engine's 2.2 s CPU. Pulumi has no switch for it; it skips it when it cannot make
    that directory, so ``logs`` is made a small file saying why. ``DCOPS_PULUMI_LOGS=1`` keeps
    (or restores) Pulumi's automatic log; ``-v=N --logtostderr`` / ``--logflow`` still log on demand.
    """
    logs = Path(home) / "logs"
    if keep is None:
        keep = _truthy(os.environ.get("DCOPS_PULUMI_LOGS"))
    if keep:
        if logs.is_file():
            logs.unlink()
        return
    if logs.is_dir() and not logs.is_symlink():
        shutil.rmtree(logs, ignore_errors=True)
    if not logs.exists():
        logs.write_text("dcops: Pulumi's automatic debug log is off (infra/pulumi_env.py, quiet_automatic_log); "
                        "DCOPS_PULUMI_LOGS=1 turns it back on.\n")


def stack_env(stack: "Stack", base: dict[str, str] | None = None) -> dict[str, str]:
    """The environment for running ``pulumi`` on a stack: its backend, secrets passphrase file,
    S3 credentials and PULUMI_HOME, from the stack's environment (nothing from the lab)."""
    env = _base_env(base)
    b = stack.env.backend
    env["PULUMI_BACKEND_URL"] = b.url
    env["PULUMI_HOME"] = str(stack.resolve(b.home) if b.home else default_home())
    if b.passphrase is not None:
        env["PULUMI_CONFIG_PASSPHRASE_FILE"] = str(stack.secret_path(b.passphrase, "backend.passphrase"))
    if b.credentials_file:
        env["AWS_SHARED_CREDENTIALS_FILE"] = str(stack.resolve(b.credentials_file))
    if b.profile:
        env["AWS_PROFILE"] = b.profile
    if b.aws_config_file:
        env["AWS_CONFIG_FILE"] = str(stack.resolve(b.aws_config_file))
    if b.ca_file:
        env["AWS_CA_BUNDLE"] = str(stack.resolve(b.ca_file))
    if b.url.startswith("s3://"):
        env["AWS_EC2_METADATA_DISABLED"] = "true"  # credentials come from the environment's files only
    env["DCOPS_STACK"] = stack.name
    env["DCOPS_CONFIG_FILE"] = str(stack.config_file)
    return env


def default_home() -> Path:
    from .paths import cache_dir

    return cache_dir() / "pulumi-home"


def lab_env(name: str | None = None, base: dict[str, str] | None = None) -> dict[str, str]:
    """The environment for running ``pulumi`` against lab ``name``.

    Starts from ``base`` (default: this process's environment) minus anything
    that would point Pulumi elsewhere (another backend, an access token, a
    literal passphrase), then sets the lab's backend, passphrase file, home,
    update-check and plugin-download switches, PATH (tools first, then this
    Python's venv so the language host finds the pinned SDK) and ``DCOPS_LAB``.
    """
    n = lab_name(name)
    env = _base_env(base)
    env.update(
        {
            "PULUMI_BACKEND_URL": f"file://{state_dir(n)}",
            "PULUMI_CONFIG_PASSPHRASE_FILE": str(passphrase_path(n)),
            "PULUMI_HOME": str(home_dir(n)),
            "DCOPS_LAB": n,
        }
    )
    return env


def shell_exports(name: str | None = None) -> str:
    """``export`` lines for a shell (values only, never the passphrase itself).

    Also ``DCOPS_PULUMI_ARGS`` (``--stack lab --config-file ...``) for commands
    typed by hand: ``pulumi up $DCOPS_PULUMI_ARGS``.
    """
    import shlex

    env = lab_env(name, base={"PATH": os.environ.get("PATH", "")})
    env["DCOPS_PULUMI_ARGS"] = f"--stack {STACK} --config-file {config_file(name)}"
    keys = (
        "PULUMI_BACKEND_URL",
        "PULUMI_CONFIG_PASSPHRASE_FILE",
        "PULUMI_HOME",
        "PULUMI_SKIP_UPDATE_CHECK",
        "PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION",
        "PULUMI_SKIP_CHECKPOINTS",
        "PATH",
        "DCOPS_LAB",
        "DCOPS_PULUMI_ARGS",
    )
    return "\n".join(f"export {k}={shlex.quote(env[k])}" for k in keys)


# --------------------------------------------------------------------------- running pulumi


@contextlib.contextmanager
def private_tmpdir() -> Iterator[str]:
    """A TMPDIR (0700) for one pulumi run and its plugins, removed when the run ends.

    pulumi-kubernetes copies the provider's kubeconfig (client key included) to
    ``$TMPDIR/kubeconfigNNN`` at every configure, for Helm, and never removes it: every pulumi that
    dcops runs gets one of these, so no copy lands anywhere shared."""
    with tempfile.TemporaryDirectory(prefix="dcops-pulumi-") as tmp:
        yield tmp


def pulumi(
    args: Sequence[str],
    name: "Union[str, Stack, None]" = None,
    *,
    cwd: Path = REPO,
    capture: bool = False,
    check: bool = True,
    on_line: Callable[[str], None] | None = None,
    env_extra: dict[str, str] | None = None,
    timeout: float | None = None,
) -> subprocess.CompletedProcess:
    """Run ``pulumi ARGS`` with a stack's environment (``name``: a :class:`~infra.environment.Stack`)
    or, for the lab's own set-up, a lab name.

    ``capture``: return stdout in ``.stdout`` (stderr in ``.stderr``).  Else the
    merged output is passed line by line to ``on_line`` (default: printed) and
    also kept in ``.stdout``.  ``check``: raise :class:`PulumiError` on a
    non-zero exit.
    """
    exe = str(tool("pulumi"))
    if isinstance(name, str) or name is None:
        env = lab_env(name)
        home_dir(name).mkdir(parents=True, exist_ok=True, mode=0o700)
        state_dir(name).mkdir(parents=True, exist_ok=True, mode=0o700)
    else:
        env = stack_env(name)
        Path(env["PULUMI_HOME"]).mkdir(parents=True, exist_ok=True, mode=0o700)
        if env["PULUMI_BACKEND_URL"].startswith("file://"):
            Path(env["PULUMI_BACKEND_URL"][len("file://"):]).mkdir(parents=True, exist_ok=True, mode=0o700)
    env.update(env_extra or {})
    link_plugins(Path(env["PULUMI_HOME"]))
    quiet_automatic_log(Path(env["PULUMI_HOME"]), keep=_truthy(env.get("DCOPS_PULUMI_LOGS")))
    cmd = [exe, *args]
    with private_tmpdir() as tmp:
        env["TMPDIR"] = tmp
        if capture:
            cp = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout,
                                stdin=subprocess.DEVNULL)
            if check and cp.returncode != 0:
                raise PulumiError(args, cp.returncode, cp.stdout + cp.stderr)
            return cp
        emit = on_line or (lambda s: print(s, flush=True))
        lines: list[str] = []
        with subprocess.Popen(cmd, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                              stdin=subprocess.DEVNULL, bufsize=1) as p:
            assert p.stdout
            for line in p.stdout:
                line = line.rstrip("\n")
                lines.append(line)
                emit(line)
            code = p.wait(timeout=timeout)
    out = "\n".join(lines)
    if check and code != 0:
        raise PulumiError(args, code, out)
    return subprocess.CompletedProcess(cmd, code, out, "")


def stack_args(name: str | None = None) -> list[str]:
    """``--stack lab --config-file <lab dir>/Pulumi.lab.yaml`` for every stack command."""
    return ["--stack", STACK, "--config-file", str(ensure_config_file(name))]


def ensure_stack(name: str | None = None, province: Path | str | None = None) -> None:
    """Create the ``lab`` stack in the lab's backend (passphrase secrets) if it is not there.

    ``pulumi stack init`` always writes the new stack's encryption salt into
    the project's stack config file (it has no ``--config-file``), which for
    this repository would be ``stacks/Pulumi.lab.yaml``.  So the stack is
    created from a minimal project of the same name in ``<lab dir>/init`` and
    its salt copied into the lab's config file: the repository is never
    rewritten, and two labs never share a salt.

    ``province``: set the stack's province file (config ``dcops:province``).
    """
    import json

    import yaml

    n = lab_name(name)
    if not passphrase_path(n).exists():
        raise PulumiError(["stack", "init"], 3, f"lab '{n}' has no passphrase: run `dcops lab up --name {n}` first")
    cfg = ensure_config_file(n)
    cp = pulumi(["stack", "ls", "--json"], n, capture=True)
    stacks = {s["name"] for s in json.loads(cp.stdout or "[]")}
    if STACK not in stacks:
        init = lab_dir(n) / "init"
        init.mkdir(parents=True, exist_ok=True, mode=0o700)
        project = yaml.safe_load(_project_file().read_text()) if _project_file().exists() else {}
        (init / "Pulumi.yaml").write_text(
            yaml.safe_dump({"name": project.get("name", "dcops"), "runtime": "python"}, sort_keys=False)
        )
        pulumi(["stack", "init", STACK, "--secrets-provider", "passphrase", "--non-interactive"], n, cwd=init,
               capture=True)
        salt = re.search(r"(?m)^encryptionsalt:.*$", (init / f"Pulumi.{STACK}.yaml").read_text())
        if salt:
            text = re.sub(r"(?m)^encryptionsalt:.*\n?", "", cfg.read_text())
            if not text.endswith("\n"):
                text += "\n"
            cfg.write_text(text + salt.group(0) + "\n")
        shutil.rmtree(init, ignore_errors=True)
    if province is not None:
        set_config("dcops:province", str(Path(province).resolve()), n)


def set_config(key: str, value: str, name: str | None = None, secret: bool = False) -> None:
    args = ["config", "set", key, value, *stack_args(name), "--non-interactive"]
    if secret:
        args.append("--secret")
    pulumi(args, name, capture=True)


def action_args(action: str, *, json_out: bool = False, extra: Sequence[str] = ()) -> list[str]:
    if action not in ACTIONS:
        raise ValueError(f"unknown action {action!r}; one of {', '.join(ACTIONS)}")
    args = [action, "--non-interactive"]
    if action in ("up", "refresh", "destroy"):
        args += ["--yes", "--skip-preview"]
    if json_out and action in ("preview",):
        args.append("--json")
    return args + list(extra)


def provision(
    name: str | None = None,
    action: str = "up",
    *,
    province: Path | str | None = None,
    extra: Sequence[str] = (),
    on_line: Callable[[str], None] | None = None,
    check: bool = True,
) -> subprocess.CompletedProcess:
    """``pulumi <action>`` of the ``lab`` stack against lab ``name`` (stack made if missing)."""
    ensure_stack(name, province)
    return pulumi([*action_args(action, extra=extra), *stack_args(name)], name, on_line=on_line, check=check)


def _checkpoint_ok(path: Path) -> bool:
    import gzip
    import json

    try:
        raw = path.read_bytes()
        if path.suffix == ".gz":
            raw = gzip.decompress(raw)
        json.loads(raw)
        return True
    except (OSError, ValueError, EOFError):
        return False


def repair_checkpoints(name: str | None = None) -> list[str]:
    """Restore any stack checkpoint of the lab's file backend that a killed update left unreadable.

    An update killed at the wrong moment can leave ``.pulumi/stacks/<project>/<stack>.json``
    empty or cut short; Pulumi then fails every command with ``failed to load checkpoint: EOF``.
    The newest readable copy (``<stack>.json.bak`` or ``.pulumi/backups/<project>/<stack>/``) is put
    back; ``pulumi refresh`` then reads the real state of the cluster into it.  Returns what was done.
    """
    return _repair_in(state_dir(name))


def _repair_in(backend_dir: Path) -> list[str]:
    done: list[str] = []
    stacks = backend_dir / ".pulumi" / "stacks"
    for cp in sorted(stacks.glob("*/*.json")) + sorted(stacks.glob("*/*.json.gz")):
        if _checkpoint_ok(cp):
            continue
        project, stack = cp.parent.name, cp.name.split(".json")[0]
        backups = sorted((backend_dir / ".pulumi" / "backups" / project / stack).glob("*.json*"),
                         key=lambda q: q.stat().st_mtime, reverse=True)
        candidates = [cp.with_name(cp.name + ".bak"), *backups]
        good = next((c for c in candidates if c.exists() and _checkpoint_ok(c)), None)
        if good is None:
            done.append(f"{cp}: unreadable and no readable backup; `pulumi stack import` one by hand")
            continue
        shutil.copyfile(good, cp)
        done.append(f"{cp}: unreadable after a killed update; restored from {good.name}")
    return done


def cancel(name: str | None = None) -> list[str]:
    """Recover from a killed update: repair an unreadable checkpoint, then ``pulumi cancel`` (clears its lock).

    Follow with ``pulumi refresh`` (``dcops provision --refresh``) to read the real state back.
    """
    repaired = repair_checkpoints(name)
    pulumi(["cancel", "--yes", *stack_args(name)[:2]], name, capture=True, check=False)
    return repaired


def remove_lab_files(name: str | None = None) -> None:
    """Remove the lab's Pulumi files (state, home, config, passphrase); `lab down` removes the whole lab dir."""
    for p in (state_dir(name), home_dir(name)):
        shutil.rmtree(p, ignore_errors=True)
    for p in (config_file(name), passphrase_path(name)):
        p.unlink(missing_ok=True)


# --------------------------------------------------------------------------- a stack's environment


def stack_cli_args(stack: "Stack") -> list[str]:
    """``--stack NAME --config-file FILE`` of a stack (what every stack command takes)."""
    return ["--stack", stack.name, "--config-file", str(stack.config_file)]


def ensure_stack_for(stack: "Stack") -> None:
    """Create the stack in its backend (with its secrets provider) if it is not there.

    ``pulumi stack init`` writes the new stack's encryption salt (or encrypted key) into the
    project's stack config file and has no ``--config-file``; the stack is made from a minimal
    project of the same name in a temporary directory and those lines copied into the stack's
    own config file, so a lab's config lives in the lab dir and a province's in
    ``stacks/Pulumi.<stack>.yaml``, and nothing else is rewritten.
    """
    import json
    import tempfile

    import yaml

    cp = pulumi(["stack", "ls", "--json"], stack, capture=True)
    names = {s["name"].split("/")[-1] for s in json.loads(cp.stdout or "[]")}
    if stack.name in names:
        return
    project = yaml.safe_load(_project_file().read_text()) if _project_file().exists() else {}
    with tempfile.TemporaryDirectory(prefix="dcops-stack-init-") as d:
        init = Path(d)
        (init / "Pulumi.yaml").write_text(
            yaml.safe_dump({"name": project.get("name", "dcops"), "runtime": "python"}, sort_keys=False))
        pulumi(["stack", "init", stack.name, "--secrets-provider", stack.env.backend.secrets_provider,
                "--non-interactive"], stack, cwd=init, capture=True)
        made = init / f"Pulumi.{stack.name}.yaml"
        keep = re.findall(r"(?m)^(?:encryptionsalt|encryptedkey|secretsprovider):.*$", made.read_text()) if made.exists() else []
    if keep:
        text = re.sub(r"(?m)^(?:encryptionsalt|encryptedkey|secretsprovider):.*\n?", "", stack.config_file.read_text())
        if not text.endswith("\n"):
            text += "\n"
        stack.config_file.write_text(text + "\n".join(keep) + "\n")


def provision_stack(
    stack: "Stack",
    action: str = "up",
    *,
    extra: Sequence[str] = (),
    on_line: Callable[[str], None] | None = None,
    check: bool = True,
) -> subprocess.CompletedProcess:
    """``pulumi <action>`` of a stack, with its environment (the stack is made if missing)."""
    ensure_stack_for(stack)
    return pulumi([*action_args(action, extra=extra), *stack_cli_args(stack)], stack, on_line=on_line, check=check)


def file_backend_dir(stack: "Stack") -> Path | None:
    url = stack.env.backend.url
    return Path(url[len("file://"):]) if url.startswith("file://") else None


def cancel_stack(stack: "Stack") -> list[str]:
    """Recover a stack from a killed update: repair a file backend's checkpoint, clear the lock."""
    done: list[str] = []
    d = file_backend_dir(stack)
    if d is not None:
        done = _repair_in(d)
    pulumi(["cancel", "--yes", *stack_cli_args(stack)[:2]], stack, capture=True, check=False)
    return done
