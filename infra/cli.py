"""The ``dcops`` command line.

Exit codes, for scripts: 0 success; 1 something checked failed (a control, a
host, an SLA); 2 bad input (a province file that does not validate, an unknown
site or option) and nothing was changed; 3 an environment problem (a missing
tool, the lab not running).
"""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console

from .validate import ProvinceError, load_province
from .lab.cli import lab_app, provision_app
from .check_cli import check_app
from .wan.cli import wan_app

EXIT_OK, EXIT_FAILED, EXIT_BAD_INPUT, EXIT_ENV = 0, 1, 2, 3

app = typer.Typer(
    help=(
        "dcops: the provincial data integration center and WAN, as code.\n\n"
        "Typical day: `dcops validate stacks/province-lab.yaml`, `dcops lab up`, "
        "`pulumi up` (or `dcops provision`), `dcops wan apply`, `dcops check`, `dcops report`."
    ),
    no_args_is_help=True,
    rich_markup_mode=None,
    pretty_exceptions_enable=False,
)
err = Console(stderr=True, highlight=False, soft_wrap=True)
out = Console(highlight=False, soft_wrap=True)

DEFAULT_PROVINCE = Path("stacks/province-lab.yaml")


def province_or_exit(path: Path):
    """Load and validate a province file; on problems print them all and exit 2."""
    try:
        return load_province(path)
    except ProvinceError as e:
        for p in e.problems:
            err.print(p.render(e.file), markup=False)
        err.print(f"{e.file}: {len(e.problems)} problem(s); nothing was changed.", markup=False)
        raise typer.Exit(EXIT_BAD_INPUT)


@app.command()
def validate(
    files: list[Path] = typer.Argument(..., help="province files, e.g. stacks/province-lab.yaml"),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="print only problems"),
) -> None:
    """Check province files completely and print every problem at once.

    Each problem names the file, line, path inside the file (for example
    wan.sites[12].lan), what is wrong and how to fix it. Exit code 0 only when
    every file is valid, 2 otherwise.
    """
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


from .report_cli import report as _report  # noqa: E402
app.command("report")(_report)


from . import run_cli as _run_cli  # noqa: E402,F401  (registers `dcops run`)
from .bench import cli as _bench_cli  # noqa: E402,F401  (registers `dcops bench`)


def main() -> None:  # pragma: no cover
    app()


if __name__ == "__main__":  # pragma: no cover
    # `python -m infra.cli` runs this file as __main__; use the canonical module
    # so every command registered on infra.cli.app is there.
    from infra.cli import main as _main

    _main()
