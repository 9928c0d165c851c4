"""The Pulumi program: the data integration center, from the province file.

``Pulumi.yaml`` names this file (``main: infra/program.py``); stack configs live
in ``stacks/Pulumi.<stack>.yaml``.  Stack config (namespace ``dcops``):

- ``dcops:province`` (required): the province file, relative to the repo root
  (e.g. ``stacks/province-lab.yaml``);
- ``dcops:environment`` (required): the stack's environment (:mod:`infra.environment`), inline
  or the path of its file; the program uses each cluster's ``admin`` kubeconfig and context;
- ``dcops:awaitReady`` (default true): let the pulumi-kubernetes provider await every object
  (Deployments rolled out, PVCs bound, Services with endpoints...);
- ``dcops:readyTimeout`` (default 300): seconds for each object's create, update and delete.

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
    DRCopy,
    DRCopyArgs,
    NetworkSegment,
    NetworkSegmentArgs,
    Platform,
    PlatformArgs,
    Storage,
    StorageArgs,
)
from infra.k8s import DEFAULT_TIMEOUT  # noqa: E402
from infra.model import ProvinceFile  # noqa: E402
from infra.paths import REPO  # noqa: E402
from infra.render.k8s import ClusterObjects, RenderError, object_key, render_province  # noqa: E402
from infra.validate import ProvinceError, load_province  # noqa: E402


class InvalidProvince(ProvinceError, pulumi.RunError):
    """The province file does not validate; nothing was declared (Pulumi shows the problems without a traceback)."""


class UnrenderableProvince(RenderError, pulumi.RunError):
    """The province file validates but cannot be turned into Kubernetes objects; nothing was declared."""


@dataclass(frozen=True)
class StackSettings:
    province: Path
    kubeconfigs: dict[str, str] = field(default_factory=dict)  # cluster id -> admin kubeconfig (absolute)
    contexts: dict[str, str | None] = field(default_factory=dict)
    await_ready: bool = True
    ready_timeout: int = DEFAULT_TIMEOUT
    placement: dict[str, str] = field(default_factory=dict)
    """platform id -> the cluster it runs on, for those a failover moved (:mod:`infra.dr.placement`)."""

    @classmethod
    def from_config(cls) -> "StackSettings":
        from infra.environment import environment_from_config

        cfg = pulumi.Config("dcops")
        province = Path(cfg.require("province"))
        await_ready = cfg.get_bool("awaitReady")
        raw = cfg.get("environment")  # a mapping arrives as JSON, a file path as a plain string
        if raw is not None:
            import json

            try:
                raw = json.loads(raw)
            except ValueError:
                pass
        if raw is None:
            raise pulumi.RunError("dcops:environment is missing from the stack config: see README, "
                                  "'Using dcops on your province' (the lab writes it at `dcops lab up`)")
        env, resolve, problems = environment_from_config(raw)
        if problems:
            raise pulumi.RunError("dcops:environment does not validate:\n" + "\n".join(problems))
        from infra.dr.placement import PlacementError, placement
        from infra.paths import cache_dir

        work_dir = resolve(env.work_dir) if env.work_dir else cache_dir() / "stacks" / pulumi.get_stack()
        try:
            placed = placement(work_dir)
        except PlacementError as e:
            raise pulumi.RunError(f"the DR placement record: {e}") from None
        return cls(
            placement=placed,
            province=province if province.is_absolute() else REPO / province,
            kubeconfigs={c: str(resolve(a.admin.kubeconfig)) for c, a in env.clusters.items()},
            contexts={c: a.admin.context for c, a in env.clusters.items()},
            await_ready=True if await_ready is None else await_ready,
            ready_timeout=cfg.get_int("readyTimeout") or DEFAULT_TIMEOUT,
        )

    def kubeconfig(self, cluster_id: str) -> str:
        """The admin kubeconfig of a cluster, from the stack's environment."""
        try:
            return self.kubeconfigs[cluster_id]
        except KeyError:
            raise pulumi.RunError(f"the stack's environment has no access to cluster '{cluster_id}' "
                                  f"(dcops:environment clusters: {', '.join(self.kubeconfigs) or 'none'})") from None

    def context(self, cluster_id: str) -> str | None:
        """The kubeconfig context of a cluster (None: the kubeconfig's current context)."""
        return self.contexts.get(cluster_id)


def load(settings: StackSettings) -> tuple[ProvinceFile, dict[str, ClusterObjects]]:
    """Validate and render everything, or raise (before any resource exists)."""
    try:
        model = load_province(settings.province)
    except ProvinceError as e:
        raise InvalidProvince(e.file, e.problems) from None
    try:
        rendered = render_province(model, settings.placement)
    except RenderError as e:
        raise UnrenderableProvince(e.problems) from None
    unknown = sorted(set(settings.kubeconfigs) - set(rendered))
    if unknown:
        raise pulumi.RunError(
            f"dcops:environment names cluster(s) {', '.join(unknown)} that {settings.province} does not define "
            f"(clusters: {', '.join(rendered)})"
        )
    return model, rendered


def build(model: ProvinceFile, rendered: dict[str, ClusterObjects], settings: StackSettings) -> dict[str, Any]:
    """Declare the components; returns the stack outputs (also exported)."""
    clusters_out: dict[str, Any] = {}
    platforms_out: dict[str, Any] = {}
    moved: dict[str, Any] = {}
    for cid, objects in rendered.items():
        cluster = Cluster(
            cid,
            ClusterArgs(objects, settings.kubeconfig(cid), settings.await_ready, settings.ready_timeout,
                        context=settings.context(cid)),
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
        for pid, copy in objects.dr_copies.items():
            DRCopy(f"{cid}/{pid}", DRCopyArgs(cluster, copy, storage), child)
            if copy.active:  # a failover moved it here: the platform's outputs say where it runs
                moved[pid] = {"cluster": cid, "home": copy.home,
                              "replicas": copy.workload["spec"]["replicas"] if copy.workload else None}
        clusters_out[cid] = {
            "kubeconfig": cluster.kubeconfig,
            "namespaces": [po.namespace_name for po in objects.platforms.values()],
            "storage_classes": [sc["metadata"]["name"] for sc in objects.storage_classes],
            "objects": [object_key(o) for o in objects.objects()],
        }
    for pid, where in moved.items():
        platforms_out[pid] = {**platforms_out.get(pid, {}), **where}
    outputs = {
        "province": {"code": model.province.code, "name": model.province.name, "file": str(settings.province)},
        "clusters": clusters_out,
        "platforms": platforms_out,
    }
    for key, value in outputs.items():
        pulumi.export(key, value)
    return outputs


def main() -> dict[str, Any]:
    from infra.sdk_tuning import tune

    tune(Path(__file__).resolve().parent.parent)  # trimmed stack traces, no per-resource debug RPCs
    settings = StackSettings.from_config()
    model, rendered = load(settings)
    return build(model, rendered, settings)


if __name__ == "__main__":
    main()
