"""Renderers: turn the province model into plain objects other tools consume.

- :mod:`infra.render.k8s`: the Kubernetes objects of every cluster (the Pulumi
  program applies them; benchmarks ``kubectl apply --server-side`` them; checks
  compare the live clusters with them).
"""
