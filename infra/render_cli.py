"""``dcops render k8s -p FILE [--cluster C] [-o OUT]``: the Kubernetes objects of a province, as YAML.

Exactly what ``dcops provision`` applies (one renderer, :mod:`infra.render.k8s`), in apply order,
one YAML document per object, each cluster's under a comment naming it: for review, for a
manifest checker (kube-score), and for ``kubectl diff -f`` against a cluster. Contacts nothing.
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer
import yaml

from .cli_common import DEFAULT_PROVINCE, EXIT_BAD_INPUT, err, out, province_or_exit
from .render.k8s import RenderError, render_province

render_app = typer.Typer(rich_markup_mode=None, no_args_is_help=True,
                         help="Write what dcops would apply, from a province file; contacts nothing.")


class _Dumper(yaml.SafeDumper):
    def ignore_aliases(self, data):  # every object written out in full
        return True


def k8s_yaml(model, cluster: str | None = None) -> str:
    """Every rendered object (of one cluster, or all) as multi-document YAML."""
    rendered = render_province(model)
    docs = []
    for cid, objs in rendered.items():
        if cluster and cid != cluster:
            continue
        for o in objs.objects():
            body = yaml.dump(o, Dumper=_Dumper, sort_keys=False, allow_unicode=True, width=200)
            docs.append(f"# cluster: {cid}\n{body}")
    return "---\n".join(docs)


@render_app.command("k8s")
def k8s(
    province: Path = typer.Option(DEFAULT_PROVINCE, "--province", "-p", help="the province file"),
    cluster: Optional[str] = typer.Option(None, "--cluster", "-c", help="one cluster only (default: every cluster)"),
    output: Optional[Path] = typer.Option(None, "--output", "-o", help="write here instead of standard output"),
) -> None:
    """The Kubernetes objects of every cluster (or one), as YAML.

    Examples:
      dcops render k8s -p stacks/province-lab.yaml --cluster primary | kubectl diff --server-side -f -
      dcops render k8s -p stacks/province-thanhhoa.yaml -o /tmp/thanhhoa.yaml
    """
    model = province_or_exit(province)
    if cluster and cluster not in model.cluster_by_id:
        err.print(f"error: {province} has no cluster '{cluster}' (clusters: {', '.join(model.cluster_by_id)})",
                  markup=False)
        raise typer.Exit(EXIT_BAD_INPUT)
    try:
        text = k8s_yaml(model, cluster)
    except RenderError as e:
        for p in e.problems:
            err.print(p, markup=False)
        raise typer.Exit(EXIT_BAD_INPUT)
    if output:
        output.write_text(text, encoding="utf-8")
        err.print(f"wrote {output}: {text.count(chr(10) + 'kind: ') + text.startswith('kind: ')} objects", markup=False)
    else:
        out.file.write(text)
