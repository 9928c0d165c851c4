"""``dcops provision``: ``pulumi up`` (or preview, refresh, destroy) of a stack, with its environment.

The Pulumi program (``Pulumi.yaml`` -> ``infra/program.py``) reads the stack's province file and
environment (kubeconfig and context of each cluster); this command only runs the Pulumi CLI with
the environment's backend, secrets passphrase file and PULUMI_HOME, inside its management
namespace when it names one. Engineers may run ``pulumi up -s STACK`` themselves: the same thing.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Optional

import typer

from .cli_common import EXIT_BAD_INPUT, EXIT_ENV, EXIT_FAILED, ConfigFileOpt, StackOpt, err, out, stack_or_exit
from .paths import ToolMissing

provision_app = typer.Typer(rich_markup_mode=None)


@provision_app.callback(invoke_without_command=True)
def provision(
    stack: Optional[str] = StackOpt,
    config_file: Optional[Path] = ConfigFileOpt,
    preview: bool = typer.Option(False, "--preview", help="show what would change (with a field-level diff), change nothing"),
    destroy: bool = typer.Option(False, "--destroy", help="delete every object of the stack"),
    refresh: bool = typer.Option(False, "--refresh", help="read the real state back into Pulumi's state (then `dcops provision` puts out-of-band edits back)"),
    recover: bool = typer.Option(False, "--recover", help="after an update was killed: repair a file backend's checkpoint, "
                                 "clear the stack's lock (never while someone else's update runs), then refresh"),
) -> None:
    """Provision a stack's clusters from its province file: `pulumi up`.

    Uses the stack's environment: the Pulumi backend (a file backend, or a
    shared S3-compatible one with locking for a team), the secrets
    passphrase file, and each cluster's admin kubeconfig and context. The
    stack is created in its backend on first use. --preview shows what would
    change, --refresh reads the real state back, --destroy deletes every
    object of the stack. --recover, after an update was killed: repair the
    checkpoint, clear the stack's lock (never while another update runs: on a
    shared backend that is someone else's), then refresh.

    \b
    Examples:
      dcops provision                       # the lab
      dcops provision -s thanhhoa --preview
      pulumi up -s thanhhoa                 # the same, by hand (see `dcops lab env` for the lab)

    Exit 1 when pulumi fails (including "the stack is locked" by another
    engineer's update), 2 for a bad province file or environment, 3 when the
    environment cannot be used (the lab is not up, a tool is missing).
    """
    from . import pulumi_env

    refresh = refresh or recover
    if sum((preview, destroy, refresh)) > 1:
        err.print("error: choose at most one of --preview, --destroy, --refresh/--recover", markup=False)
        raise typer.Exit(EXIT_BAD_INPUT)
    st = stack_or_exit(stack, config_file)
    action = "preview" if preview else "destroy" if destroy else "refresh" if refresh else "up"
    t0 = time.monotonic()
    say = lambda m: out.print(f"[{time.monotonic() - t0:6.1f}s] {m}", markup=False)  # noqa: E731
    say(f"pulumi {action} of stack '{st.name}' ({st.env.kind}; backend {st.env.backend.url.split('?')[0]})")
    try:
        if recover:  # after a killed update: repair its checkpoint, clear its lock
            for msg in pulumi_env.cancel_stack(st):
                say(msg)
        pulumi_env.provision_stack(st, action, extra=["--diff"] if preview else (),
                                   on_line=lambda s: out.print(s, markup=False, highlight=False))
    except ToolMissing as e:
        err.print(f"error: {e}", markup=False)
        raise typer.Exit(EXIT_ENV)
    except pulumi_env.PulumiError as e:
        locked = "locked" in e.output
        err.print(f"error: pulumi {action} failed (exit {e.code})"
                  + ("; the stack is locked by another update (Pulumi's lock): nothing was changed by this run" if locked else ""),
                  markup=False)
        raise typer.Exit(EXIT_FAILED)
    say(f"pulumi {action}: done")
