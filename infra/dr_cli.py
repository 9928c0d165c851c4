"""``dcops dr``: disaster recovery. Backups with Velero and restore tests that leave evidence
(:mod:`infra.dr.backup`); failover and failback are added to the same group (``dr_app``).

Exit codes: 0 ok; 1 a backup or a restore check failed; 2 bad input (unknown platform, the
environment has no backup target); 3 unreachable (a cluster, Velero, the object storage) or a
tool missing.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import typer

from .cli_common import EXIT_BAD_INPUT, EXIT_FAILED, EXIT_OK, ConfigFileOpt, StackOpt, err, out, stack_or_exit

dr_app = typer.Typer(
    rich_markup_mode=None, no_args_is_help=True,
    help=("Disaster recovery: backups with Velero to the province's S3-compatible object storage, restore "
          "tests on the DR cluster that leave a record for the auditors.\n\n"
          "Typical: `dcops dr backup -s thanhhoa` after a change, `dcops dr restore-test -s thanhhoa` at least "
          "every datacenter.backup.restore_test_interval_days; `dcops check --only DCOPS-BAK-003` reads the record."),
)

PlatformOpt = typer.Option(None, "--platform", "-p", help="a platform id of the province file (default: every platform)")
DryRunOpt = typer.Option(False, "--dry-run", help="say what would be done; contact nothing, change nothing")


def _say(m: str) -> None:
    out.print(m, markup=False)


def _load(stack: Optional[str], config_file: Optional[Path], platform: Optional[str], dry_run: bool):
    from .validate import load_province

    st = stack_or_exit(stack, config_file, enter_netns=not dry_run)
    pf = load_province(st.province)
    if platform is not None and platform not in pf.platform_by_id:
        err.print(f"error: unknown platform '{platform}' (platforms of {st.province}: "
                  f"{', '.join(sorted(pf.platform_by_id))}); nothing was done.", markup=False)
        raise typer.Exit(EXIT_BAD_INPUT)
    if st.env.backup is None:
        err.print(f"error: the environment of stack '{st.name}' ({st.env_file}) has no 'backup' target: add "
                  "backup: {s3_url, bucket, credentials_file, site} (README: Backups and restore tests); "
                  "nothing was done.", markup=False)
        raise typer.Exit(EXIT_BAD_INPUT)
    return st, pf


def _fail(e: Exception) -> None:
    from .dr.backup import BackupError

    code = e.code if isinstance(e, BackupError) else 3
    err.print(f"error: {e}", markup=False)
    raise typer.Exit(code)


@dr_app.command("backup")
def backup_cmd(
    stack: Optional[str] = StackOpt,
    config_file: Optional[Path] = ConfigFileOpt,
    platform: Optional[str] = PlatformOpt,
    dry_run: bool = DryRunOpt,
    install: bool = typer.Option(True, "--install/--no-install",
                                 help="first apply Velero's CRDs, its BackupStorageLocation and the province's "
                                      "Schedules on every cluster (idempotent; default on)"),
    as_json: bool = typer.Option(False, "--json", help="print the records as JSON"),
) -> None:
    """Back up platforms with Velero now: objects of their namespaces (and volumes where node agents run).

    Before each backup a data marker is written in the platform's namespace
    (ConfigMap dcops-backup-marker: a random token and the time); the restore
    test looks for it. The backup goes to the environment's backup target
    (backup.s3_url, bucket; keys from backup.credentials_file, never printed)
    with the province's retention as its TTL. The record (name, times, items,
    marker) goes to <work_dir>/dr/backup/<platform>.json.

    \b
    Exit: 0 every backup Completed; 1 one ended otherwise; 2 bad input;
    3 a cluster or Velero unreachable, or velero missing (scripts/install-tools velero).

    \b
    Examples:
      dcops dr backup -s thanhhoa --dry-run
      dcops dr backup -s thanhhoa --platform dvc
      dcops dr backup                       # the lab, every platform
    """
    from .dr import backup as B

    st, pf = _load(stack, config_file, platform, dry_run)
    try:
        if install:
            B.install(st, progress=_say, dry_run=dry_run)
        recs = B.backup(st, platform, progress=_say, dry_run=dry_run)
    except Exception as e:  # BackupError, ToolMissing...
        _fail(e)
    recs = recs if isinstance(recs, list) else [recs]
    if as_json:
        out.print(json.dumps(recs, indent=1, ensure_ascii=False), markup=False)
    if not dry_run:
        out.print(f"{len(recs)} backup(s) Completed; records in {B.records_dir(st) / 'backup'}", markup=False)
    raise typer.Exit(EXIT_OK)


@dr_app.command("restore-test")
def restore_test_cmd(
    stack: Optional[str] = StackOpt,
    config_file: Optional[Path] = ConfigFileOpt,
    platform: Optional[str] = PlatformOpt,
    dry_run: bool = DryRunOpt,
    keep: bool = typer.Option(False, "--keep", help="leave the scratch namespace for a look (the record says so)"),
    as_json: bool = typer.Option(False, "--json", help="print the records as JSON"),
) -> None:
    """Restore the latest backup of platforms into a scratch namespace on the DR cluster and check it.

    For each platform: its newest Completed backup (waited for until Velero
    on the DR cluster has synced it from the storage location) is restored into
    dcops-rt-<platform>; then the objects are counted by kind against
    Velero's list of what the backup holds, and the data marker written
    before the backup is read back. The date, outcome and counts are
    recorded in <work_dir>/dr/restore-test/<platform>.json (JSON, no
    secrets; DCOPS-BAK-003 checks its age against
    datacenter.backup.restore_test_interval_days), then the scratch
    namespace is deleted.

    \b
    Exit: 0 every restore checked out; 1 a restore check failed (missing
    objects, no marker); 2 bad input; 3 a cluster or Velero unreachable,
    or no backup reached the DR cluster in time.

    \b
    Examples:
      dcops dr restore-test -s thanhhoa --dry-run
      dcops dr restore-test -s thanhhoa --platform dvc
    """
    from .dr import backup as B

    st, pf = _load(stack, config_file, platform, dry_run)
    recs = []
    names = [platform] if platform else [p.id for p in pf.platforms]
    code = EXIT_OK
    for name in names:
        try:
            r = B.restore_test(st, name, progress=_say, dry_run=dry_run, keep=keep)
        except B.BackupError as e:
            err.print(f"error: {name}: {e}", markup=False)
            code = max(code, e.code)
            continue
        except Exception as e:
            _fail(e)
        recs.append(r)
        if not dry_run and r.get("outcome") != "pass":
            code = max(code, EXIT_FAILED)
            for why in r.get("reasons") or []:
                err.print(f"{name}: {why}", markup=False)
    if as_json:
        out.print(json.dumps(recs, indent=1, ensure_ascii=False), markup=False)
    if not dry_run:
        ok = sum(1 for r in recs if r.get("outcome") == "pass")
        out.print(f"{ok} of {len(names)} restore test(s) passed; records in {B.records_dir(st) / 'restore-test'}",
                  markup=False)
    raise typer.Exit(code)


from . import dr_failover_cli as _dr_failover_cli  # noqa: E402,F401  (registers failover, failback, status)
