"""Velero's objects for the province's backups: a pure function of the province file and the
environment's backup target (where, never the keys).

- one ``BackupStorageLocation`` (``velero.io/v1``) per cluster, in Velero's namespace: the S3
  bucket of the environment's ``backup`` target (endpoint, region, path-style, the CA), with
  server-side encryption asked for when the province's ``datacenter.backup.encrypted`` is true;
- one ``Schedule`` per platform, on the platform's cluster: the province's cron
  (``datacenter.backup.schedule``), its retention as the backups' TTL
  (``retention_days`` x 24 h), the platform's namespace only, to that location.

The cluster controls (checks/controls/backup.py) compare the live objects with this
rendering; ``infra.dr.backup.install`` applies it (with Velero's CRDs).
"""

from __future__ import annotations

import base64
from typing import Any

from ..model import ProvinceFile

API = "velero.io/v1"
MANAGED = {"app.kubernetes.io/managed-by": "dcops", "app.kubernetes.io/part-of": "dcops-backup"}
SCHEDULE_PREFIX = "dcops-"


def ttl(retention_days: int) -> str:
    """Velero's TTL (a Go duration) for a retention in days."""
    return f"{retention_days * 24}h0m0s"


def schedule_name(platform: str) -> str:
    return f"{SCHEDULE_PREFIX}{platform}"


def storage_location(target: Any, encrypted: bool, ca_pem: bytes | None = None) -> dict[str, Any]:
    """The BackupStorageLocation of ``target`` (an :class:`infra.environment.BackupTarget`).

    No credentials in it: Velero reads them from its own environment (the lab's server process:
    ``AWS_SHARED_CREDENTIALS_FILE``; in a cluster: the ``cloud-credentials`` Secret that
    ``velero install --secret-file`` makes)."""
    config = {"region": target.region, "s3Url": target.s3_url, "s3ForcePathStyle": "true"}
    if encrypted:
        config["serverSideEncryption"] = "AES256"
    if target.profile != "default":
        config["profile"] = target.profile
    obj_storage: dict[str, Any] = {"bucket": target.bucket}
    if target.prefix:
        obj_storage["prefix"] = target.prefix
    if ca_pem:
        obj_storage["caCert"] = base64.b64encode(ca_pem).decode()
    return {
        "apiVersion": API, "kind": "BackupStorageLocation",
        "metadata": {"name": target.location, "namespace": target.namespace, "labels": dict(MANAGED)},
        "spec": {"provider": "aws", "default": True, "accessMode": "ReadWrite",
                 "objectStorage": obj_storage, "config": config},
    }


def schedules(pf: ProvinceFile, cluster: str, namespace: str = "velero", location: str = "dcops",
              fs_backup: bool = False) -> list[dict[str, Any]]:
    """One Schedule per platform on ``cluster``: the province's cron, TTL and the platform's namespace."""
    b = pf.datacenter.backup
    out = []
    for p in pf.platforms_on(cluster):
        out.append({
            "apiVersion": API, "kind": "Schedule",
            "metadata": {"name": schedule_name(p.id), "namespace": namespace,
                         "labels": {**MANAGED, "dcops.gov.vn/platform": p.id}},
            "spec": {
                "schedule": b.schedule,
                "useOwnerReferencesInBackup": False,
                "template": {
                    "includedNamespaces": [p.namespace],
                    "ttl": ttl(b.retention_days),
                    "storageLocation": location,
                    "snapshotVolumes": False,
                    # volume data: Velero's file-system backup, where node agents run (environment backup.fs_backup)
                    "defaultVolumesToFsBackup": fs_backup,
                    "metadata": {"labels": {**MANAGED, "dcops.gov.vn/platform": p.id}},
                },
            },
        })
    return out


def objects(pf: ProvinceFile, cluster: str, target: Any, ca_pem: bytes | None = None) -> list[dict[str, Any]]:
    """Everything dcops declares for Velero on one cluster: its namespace, the location, the schedules."""
    ns = {"apiVersion": "v1", "kind": "Namespace",
          "metadata": {"name": target.namespace, "labels": {**MANAGED,
                                                             "pod-security.kubernetes.io/enforce": "privileged"}}}
    return [ns, storage_location(target, pf.datacenter.backup.encrypted, ca_pem),
            *schedules(pf, cluster, target.namespace, target.location, target.fs_backup)]
