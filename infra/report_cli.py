"""``dcops report``: the auditors' report (mounted by :mod:`infra.cli`)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import typer

from .report import FORMATS, Inputs, ReportInputError, SecretLeak, build, load_catalog, read_json, read_results_doc
from .validate import ProvinceError, load_province

from .cli_common import EXIT_BAD_INPUT, EXIT_ENV, EXIT_FAILED, EXIT_OK, err, exit_with_problems, out  # noqa: F401

DEFAULT_RESULTS = Path("out/results/latest.json")
STAMPED = re.compile(r"^\d{8}T\d{6}Z\.json$")


def _previous_auto(results: Path, current_generated: str | None) -> Path | None:
    """The newest timestamped results document beside ``results`` that is older
    than the current one (``write_results`` keeps a timestamped copy of each run)."""
    if not results.parent.is_dir():
        return None
    best: tuple[str, Path] | None = None
    for p in results.parent.iterdir():
        if not STAMPED.match(p.name):
            continue
        try:
            gen = json.loads(p.read_text(encoding="utf-8")).get("generated") or ""
        except (OSError, ValueError):
            continue
        if current_generated and gen >= current_generated:
            continue
        if best is None or gen > best[0]:
            best = (gen, p)
    return best[1] if best else None


def _stack_outputs(st) -> tuple[dict, dict]:
    """Outputs (secrets stay masked: no --show-secrets) and state of a stack, from its backend."""
    from .paths import ToolMissing
    from .pulumi_env import PulumiError, pulumi

    try:
        sel = ["--stack", st.name]  # `stack output/export` take no --config-file
        outputs = json.loads(pulumi(["stack", "output", "--json", *sel], st, capture=True).stdout or "{}")
        state = json.loads(pulumi(["stack", "export", *sel], st, capture=True).stdout or "{}")
    except ToolMissing as e:
        err.print(f"report: {e}", markup=False)
        raise typer.Exit(EXIT_ENV)
    except (PulumiError, OSError, ValueError) as e:
        err.print(f"report: cannot read stack '{st.name}' from its backend ({str(e).splitlines()[0]}); "
                  "has it been provisioned? (`dcops provision`)", markup=False)
        raise typer.Exit(EXIT_ENV)
    return outputs, state


def verify(report_json: Path, results: Path | None = None, province: Path | None = None, waivers: Path | None = None) -> int:
    """Recompute the SHA-256 of the files a report was made from and compare them with the ones
    it names; print one line per file; 0 when all match, 1 otherwise."""
    from .report.data import sha256_file

    try:
        rep = json.loads(Path(report_json).read_text(encoding="utf-8"))
        prov = rep["provenance"]
    except (OSError, ValueError, KeyError, TypeError) as e:
        err.print(f"report --verify: {report_json} is not a report.json with a provenance section ({e.__class__.__name__})", markup=False)
        return EXIT_BAD_INPUT
    override = {"results": results, "province": province, "waivers": waivers}
    ok, checked = True, 0
    for key in ("results", "province", "waivers"):
        entry = prov.get(key)
        if not entry or not entry.get("sha256"):
            if key == "results" and (prov.get("environment") or {}).get("kind") == "sample":
                out.print("results   sample data: no results file to verify", markup=False)
            continue
        if entry.get("applied_by"):  # waivers applied by `dcops check`: covered by the results file's hash
            continue
        candidates = [override[key]] if override[key] else [Path(entry["file"]), Path(entry["abs"]) if entry.get("abs") else None]
        path = next((c for c in candidates if c is not None and Path(c).exists()), None)
        checked += 1
        if path is None:
            ok = False
            out.print(f"{key:9} MISSING   {entry['file']} (expected sha256 {entry['sha256']})", markup=False)
            continue
        got = sha256_file(Path(path))
        if got == entry["sha256"]:
            out.print(f"{key:9} ok        {path} sha256 {got}", markup=False)
        else:
            ok = False
            out.print(f"{key:9} CHANGED   {path}: sha256 {got}, the report was made from {entry['sha256']}", markup=False)
    env = prov.get("environment") or {}
    out.print(f"report {report_json}: made on {rep.get('generated_local') or rep.get('generated')} from the "
              f"{env.get('kind', '?')} environment {env.get('name') or ''}: "
              + ("every file matches" if ok and checked else "no file to verify" if ok else "the files DIFFER from those the report was made from"),
              markup=False)
    return EXIT_OK if ok else EXIT_FAILED


def report(
    lang: str = typer.Option("vi", "--lang", help="vi (default) or en"),
    formats: str = typer.Option("html,pdf,json,junit", "--format", "-f",
                                help="comma-separated: html, pdf, json, junit"),
    results: Path = typer.Option(DEFAULT_RESULTS, "--results", help="check results written by `dcops check`"),
    previous: str = typer.Option("auto", "--previous",
                                 help="previous results document or report.json to compare with; 'auto': the newest "
                                      "older timestamped copy beside --results; 'none': no comparison"),
    province: Path = typer.Option(None, "--province", help="province file (default: the stack's, else stacks/province-lab.yaml)"),
    out_dir: Path = typer.Option(Path("out/report"), "--out", help="directory for the report files"),
    stack_outputs: Path = typer.Option(None, "--stack-outputs",
                                       help="JSON of `pulumi stack output --json` (shown in the inventory)"),
    stack_state: Path = typer.Option(None, "--stack-state",
                                     help="JSON of `pulumi stack export` (resource counts in the inventory)"),
    stack: str = typer.Option(None, "--stack", "-s", help="read the province file, stack outputs and state of this stack "
                                                          "(its environment names the backend); e.g. lab, thanhhoa"),
    config_file: Path = typer.Option(None, "--config-file", help="the stack's config file, when not stacks/Pulumi.<stack>.yaml"),
    sample: bool = typer.Option(False, "--sample",
                                help="use a synthetic results document (a demo without a lab; never for auditors)"),
    waivers: Path = typer.Option(None, "--waivers", help="waivers file (e.g. stacks/waivers-lab.yaml): covered failures "
                                                         "show as waived, with their justification; expired ones say so"),
    verify_json: Path = typer.Option(None, "--verify", help="recompute the SHA-256 of the results, province and waivers "
                                                            "files a report.json names, and say whether they match (exit 0 / 1)"),
) -> None:
    """Write the auditors' report: HTML, PDF, JSON and JUnit XML.

    Built from the province file, the latest check results (`dcops check`
    writes out/results/latest.json) and, if given, the Pulumi stack's outputs
    and state. Vietnamese by default; --lang en for English. Contents: cover
    (province, date, scope, dcops version, the git commit of the province
    file); summary (pass rate by severity, platforms meeting their SLA, units
    connected and compliant against the province's own targets); inventory;
    every control with its result per target, evidence and TCVN reference,
    failures first; SLA charts per platform and per unit; changes since the
    previous results.

    Files in --out: report.<lang>.html (self-contained, no JavaScript),
    report.<lang>.pdf, report.json (also usable as --previous next time),
    report.junit.xml (one testcase per control and target, for CI).

    Secrets (private keys, passphrases, passwords) are redacted from every
    format. Exit codes: 0 written; 2 bad input (province file, results file,
    option); 3 environment (PDF engine or the lab's stack unavailable).

    Every page names the environment the results came from (production,
    staging, lab, or SAMPLE for --sample) and the SHA-256 of the results,
    province and waivers files; `dcops report --verify out/report/report.json`
    recomputes them (exit 0 when they match, 1 when a file changed or is
    missing; --results/--province/--waivers point at moved files).

    Example: dcops report --province stacks/province-lab.yaml --lang en -f html,pdf
    """
    if verify_json is not None:
        raise typer.Exit(verify(verify_json, results if results != DEFAULT_RESULTS else None, province, waivers))
    st = None
    if stack or config_file:
        from .cli_common import stack_or_exit

        st = stack_or_exit(stack, config_file)
        province = province or st.province
    province = province or Path("stacks/province-lab.yaml")
    if lang not in ("vi", "en"):
        err.print(f"report: --lang must be vi or en, not '{lang}'", markup=False)
        raise typer.Exit(EXIT_BAD_INPUT)
    fmts = [f.strip().lower() for f in formats.split(",") if f.strip()]
    bad = [f for f in fmts if f not in FORMATS]
    if bad or not fmts:
        err.print(f"report: unknown format(s) {', '.join(bad) or '(none)'}; choose from {', '.join(FORMATS)}", markup=False)
        raise typer.Exit(EXIT_BAD_INPUT)
    try:
        model = load_province(province)
    except ProvinceError as e:
        exit_with_problems(e.file, e.problems, "no report was written")
    except OSError as e:
        err.print(f"report: cannot read the province file {province}: {e}", markup=False)
        raise typer.Exit(EXIT_BAD_INPUT)
    catalog = load_catalog()
    wv = None
    if waivers is not None:
        from .waivers import WaiverError, load as load_waivers

        try:
            wv = load_waivers(waivers, catalog, model)
        except WaiverError as e:
            exit_with_problems(e.file, e.problems, "no report was written")
    try:
        if sample:
            from .report.sample import sample_results

            doc, results_path = sample_results(model, catalog), None
        else:
            if not results.exists():
                err.print(f"report: no results at {results}; run `dcops check` first, or pass --results FILE "
                          "(--sample makes a demo report from synthetic results)", markup=False)
                raise typer.Exit(EXIT_BAD_INPUT)
            doc, results_path = read_results_doc(results), results
        code = doc.get("province_code")
        if code and code != model.province.code:
            raise ReportInputError(f"{results}: these results are for province {code}, the province file "
                                   f"{province} is {model.province.code}; pass the matching --province")
        if st is not None and not sample and doc.get("stack") and doc["stack"] != st.name:
            raise ReportInputError(f"{results}: these results were checked on stack '{doc['stack']}', not '{st.name}'; "
                                   "pass the matching -s STACK (every page names the environment of the results)")
        prev_doc, prev_path = None, None
        if previous == "auto":
            prev_path = None if sample else _previous_auto(results, doc.get("generated"))
        elif previous != "none":
            prev_path = Path(previous)
        if prev_path is not None:
            prev_doc = read_results_doc(prev_path, "previous results")
        outputs = read_json(stack_outputs, "stack outputs") if stack_outputs else None
        state = read_json(stack_state, "stack state") if stack_state else None
    except ReportInputError as e:
        err.print(f"report: {e}", markup=False)
        raise typer.Exit(EXIT_BAD_INPUT)
    if st is not None and outputs is None:
        outputs, state = _stack_outputs(st)
    environment = None
    if st is not None and not sample:
        environment = {"kind": st.env.kind, "name": getattr(st.env, "name", None) or st.name, "stack": st.name}
    if sample:
        # the synthetic results are written beside the report, so that its hash can be verified like a real file's
        out_dir.mkdir(parents=True, exist_ok=True)
        results_path = out_dir / "results.sample.json"
        results_path.write_text(json.dumps(doc, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
    inputs = Inputs(province=model, province_path=province, results=doc, results_path=results_path,
                    previous=prev_doc, previous_path=prev_path, stack_outputs=outputs, stack_state=state,
                    catalog=catalog if catalog is not None else False, waivers=wv, environment=environment)
    timings: dict = {}
    try:
        written = build(inputs, out_dir, lang=lang, formats=fmts, timings=timings)
    except SecretLeak as e:
        err.print(f"report: {e}", markup=False)
        raise typer.Exit(EXIT_FAILED)
    except OSError as e:
        if "pdf" in fmts and ("pango" in str(e).lower() or "cannot load library" in str(e).lower()):
            err.print(f"report: the PDF engine cannot start ({e}); run scripts/install-system", markup=False)
            raise typer.Exit(EXIT_ENV)
        raise
    for f, p in written.items():
        out.print(f"{f:5} {p}  ({timings.get(f, 0):.1f} s)", markup=False)
    n = sum(1 for r in doc.get("results", []))
    out.print(f"report: {model.province.name} ({model.province.code}), {n} results, "
              f"{len(model.wan.sites)} sites; built in {timings['total']:.1f} s"
              + (f"; compared with {prev_path}" if prev_path else ""), markup=False)
