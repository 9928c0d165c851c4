"""The Pulumi program: the data integration center, from the province file.

``Pulumi.yaml`` names this file (``main: infra/program.py``); stack configs live
in ``stacks/Pulumi.<stack>.yaml``.  Stack config (namespace ``dcops``):

- ``dcops:province`` (required): the province file, relative to the repo root
  (e.g. ``stacks/province-lab.yaml``);
- ``dcops:kubeconfigs`` (optional): map cluster id -> kubeconfig path; a cluster
  not in the map uses the lab's ``<lab dir>/k8s/<cluster>/kubeconfig``;
- ``dcops:lab`` (optional): lab name for those defaults (else ``$DCOPS_LAB``, else ``dcops``);
- ``dcops:awaitReady`` (default true): wait for every Deployment to be Ready;
- ``dcops:readyTimeout`` (default 300): seconds for readiness and deletions.

The province file is validated (every problem at once) and every Kubernetes
object rendered BEFORE the first resource is declared: a bad file registers
nothing.  Stack outputs: ``province``, ``clusters`` (per cluster: kubeconfig,
namespaces, storage classes, every object made) and ``platforms`` (per platform:
cluster, namespace, segment, service, address, ports, replicas, image, PVCs).
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

if not __package__:  # run by path (pulumi-language-python-exec uses runpy.run_path)
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import pulumi  # noqa: E402

from infra.components import (  # noqa: E402
    Cluster,
    ClusterArgs,
    NetworkSegment,
    NetworkSegmentArgs,
    Platform,
    PlatformArgs,
    Storage,
    StorageArgs,
)
from infra.k8s import DEFAULT_TIMEOUT  # noqa: E402
from infra.model import ProvinceFile  # noqa: E402
from infra.paths import REPO, lab_dir  # noqa: E402
from infra.render.k8s import ClusterObjects, RenderError, object_key, render_province  # noqa: E402
from infra.validate import ProvinceError, load_province  # noqa: E402


class InvalidProvince(ProvinceError, pulumi.RunError):
    """The province file does not validate; nothing was declared (Pulumi shows the problems without a traceback)."""


class UnrenderableProvince(RenderError, pulumi.RunError):
    """The province file validates but cannot be turned into Kubernetes objects; nothing was declared."""


@dataclass(frozen=True)
class StackSettings:
    province: Path
    kubeconfigs: dict[str, str] = field(default_factory=dict)
    lab: str | None = None
    await_ready: bool = True
    ready_timeout: int = DEFAULT_TIMEOUT

    @classmethod
    def from_config(cls) -> "StackSettings":
        cfg = pulumi.Config("dcops")
        province = Path(cfg.require("province"))
        await_ready = cfg.get_bool("awaitReady")
        return cls(
            province=province if province.is_absolute() else REPO / province,
            kubeconfigs=dict(cfg.get_object("kubeconfigs") or {}),
            lab=cfg.get("lab"),
            await_ready=True if await_ready is None else await_ready,
            ready_timeout=cfg.get_int("readyTimeout") or DEFAULT_TIMEOUT,
        )

    def kubeconfig(self, cluster_id: str) -> str:
        """The kubeconfig path of a cluster: from ``dcops:kubeconfigs`` or the lab."""
        configured = self.kubeconfigs.get(cluster_id)
        if configured:
            p = Path(configured).expanduser()
            return str(p if p.is_absolute() else REPO / p)
        return str(lab_dir(self.lab) / "k8s" / cluster_id / "kubeconfig")


def load(settings: StackSettings) -> tuple[ProvinceFile, dict[str, ClusterObjects]]:
    """Validate and render everything, or raise (before any resource exists)."""
    try:
        model = load_province(settings.province)
    except ProvinceError as e:
        raise InvalidProvince(e.file, e.problems) from None
    try:
        rendered = render_province(model)
    except RenderError as e:
        raise UnrenderableProvince(e.problems) from None
    unknown = sorted(set(settings.kubeconfigs) - set(rendered))
    if unknown:
        raise pulumi.RunError(
            f"dcops:kubeconfigs names cluster(s) {', '.join(unknown)} that {settings.province} does not define "
            f"(clusters: {', '.join(rendered)})"
        )
    return model, rendered


def build(model: ProvinceFile, rendered: dict[str, ClusterObjects], settings: StackSettings) -> dict[str, Any]:
    """Declare the components; returns the stack outputs (also exported)."""
    clusters_out: dict[str, Any] = {}
    platforms_out: dict[str, Any] = {}
    for cid, objects in rendered.items():
        cluster = Cluster(
            cid,
            ClusterArgs(objects, settings.kubeconfig(cid), settings.await_ready, settings.ready_timeout),
        )
        child = pulumi.ResourceOptions(parent=cluster)
        segments = {
            sid: NetworkSegment(f"{cid}/{sid}", NetworkSegmentArgs(cluster, so), child)
            for sid, so in objects.segments.items()
        }
        namespaces = {pid: seg.namespaces[pid] for seg in segments.values() for pid in seg.namespaces}
        storage = Storage(cid, StorageArgs(cluster, namespaces), child)
        for pid, po in objects.platforms.items():
            Platform(pid, PlatformArgs(cluster, po, segments[po.segment], storage), child)
            svc = po.service
            platforms_out[pid] = {
                "cluster": cid,
                "namespace": po.namespace_name,
                "segment": po.segment,
                "service": f"{svc['metadata']['name']}.{po.namespace_name}.svc",
                "address": svc["metadata"]["annotations"]["dcops.gov.vn/address"],
                "ports": [p["port"] for p in svc["spec"]["ports"]],
                "replicas": po.deployment["spec"]["replicas"],
                "image": po.deployment["spec"]["template"]["spec"]["containers"][0]["image"],
                "pvcs": [
                    {
                        "name": c["metadata"]["name"],
                        "storage_class": c["spec"]["storageClassName"],
                        "size": c["spec"]["resources"]["requests"]["storage"],
                    }
                    for c in po.pvcs
                ],
            }
        clusters_out[cid] = {
            "kubeconfig": cluster.kubeconfig,
            "namespaces": [po.namespace_name for po in objects.platforms.values()],
            "storage_classes": [sc["metadata"]["name"] for sc in objects.storage_classes],
            "objects": [object_key(o) for o in objects.objects()],
        }
    outputs = {
        "province": {"code": model.province.code, "name": model.province.name, "file": str(settings.province)},
        "clusters": clusters_out,
        "platforms": platforms_out,
    }
    for key, value in outputs.items():
        pulumi.export(key, value)
    return outputs


def main() -> dict[str, Any]:
    settings = StackSettings.from_config()
    model, rendered = load(settings)
    return build(model, rendered, settings)


if __name__ == "__main__":
    main()
