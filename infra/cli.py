"""The ``dcops`` command line.

Exit codes, for scripts: 0 success; 1 something checked failed (a control, a
host, an SLA); 2 bad input (a province file or environment that does not
validate, an unknown site or option) and nothing was changed; 3 an environment
problem (a missing tool, a server unreachable or refusing the credentials, the
lab not running). Defined in :mod:`infra.cli_common`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from .check_cli import check_app
from .cli_common import (  # noqa: F401  (re-exported for the commands' modules and scripts)
    DEFAULT_PROVINCE,
    EXIT_BAD_INPUT,
    EXIT_ENV,
    EXIT_FAILED,
    EXIT_OK,
    ConfigFileOpt,
    err,
    out,
    province_or_exit,
    stack_or_exit,
)
from .lab.cli import lab_app
from .provision_cli import provision_app
from .validate import ProvinceError, load_province
from .wan.cli import wan_app

app = typer.Typer(
    help=(
        "dcops: the provincial data integration center and WAN, as code.\n\n"
        "Every command that reaches infrastructure takes the stack (-s STACK: stacks/Pulumi.<stack>.yaml, "
        "its province file and environment); default: the lab's.\n\n"
        "Typical day: `dcops validate -s thanhhoa`, `dcops provision -s thanhhoa` (pulumi up), "
        "`dcops wan apply -s thanhhoa`, `dcops check -s thanhhoa`, `dcops report -s thanhhoa`. "
        "On the lab: `dcops lab up`, then the same commands without -s."
    ),
    no_args_is_help=True,
    rich_markup_mode=None,
    pretty_exceptions_enable=False,
)
@app.command()
def validate(
    files: list[Path] = typer.Argument(None, help="province files, e.g. stacks/province-lab.yaml"),
    stack: Optional[str] = typer.Option(None, "--stack", "-s", help="also validate this stack's environment and its province file"),
    config_file: Optional[Path] = ConfigFileOpt,
    quiet: bool = typer.Option(False, "--quiet", "-q", help="print only problems"),
) -> None:
    """Check province files (and a stack's environment) completely; print every problem at once.

    Each problem names the file, line, path inside the file (for example
    wan.sites[12].lan or config.dcops:environment.prometheus.url), what is
    wrong and how to fix it. Nothing is contacted. Exit code 0 only when
    everything is valid, 2 otherwise (3: the lab's stack while no lab runs).

    Examples:
      dcops validate stacks/province-lab.yaml
      dcops validate -s thanhhoa            # stacks/Pulumi.thanhhoa.yaml: environment + province
    """
    if stack or config_file:
        st = stack_or_exit(stack, config_file, enter_netns=False)
        if not quiet:
            out.print(f"stack '{st.name}': environment valid ({st.env.kind}; {st.env_file}); province {st.province}",
                      markup=False)
        files = [*(files or []), st.province]
    if not files:
        err.print("error: name province files, or a stack with -s", markup=False)
        raise typer.Exit(EXIT_BAD_INPUT)
    bad = 0
    for f in files:
        try:
            m = load_province(f)
        except ProvinceError as e:
            bad += 1
            for p in e.problems:
                err.print(p.render(e.file), markup=False)
            err.print(f"{f}: {len(e.problems)} problem(s)", markup=False)
            continue
        if not quiet:
            out.print(
                f"{f}: valid: {m.province.name} ({m.province.code}), level {m.province.security_level}, "
                f"{len(m.datacenter.clusters)} clusters, {len(m.datacenter.segments)} segments, "
                f"{len(m.platforms)} platforms, {len(m.wan.sites)} sites",
                markup=False,
            )
    raise typer.Exit(EXIT_BAD_INPUT if bad else EXIT_OK)


@app.command()
def version() -> None:
    """Print the dcops version."""
    from . import __version__

    out.print(f"dcops {__version__}")


app.add_typer(lab_app, name="lab")
app.add_typer(provision_app, name="provision")
app.add_typer(check_app, name="check")
app.add_typer(wan_app, name="wan")
from .render_cli import render_app  # noqa: E402

app.add_typer(render_app, name="render")
from .dr_cli import dr_app  # noqa: E402  (dcops dr backup / restore-test; failover, failback)

app.add_typer(dr_app, name="dr")


from .report_cli import report as _report  # noqa: E402
app.command("report")(_report)


from . import run_cli as _run_cli  # noqa: E402,F401  (registers `dcops run`)
from .drift_cli import drift as _drift  # noqa: E402

app.command("drift")(_drift)
from .bench import cli as _bench_cli  # noqa: E402,F401  (registers `dcops bench`)


def main() -> None:  # pragma: no cover
    app()


if __name__ == "__main__":  # pragma: no cover
    # `python -m infra.cli` runs this file as __main__; use the canonical module
    # so every command registered on infra.cli.app is there.
    from infra.cli import main as _main

    _main()
