"""The lab: a real, local copy of the data center on one machine.

- :mod:`infra.lab.state`: the lab's record of every process and resource it made;
- :mod:`infra.lab.pki`: certificates and keys of the control planes;
- :mod:`infra.lab.controlplane`: etcd, kube-apiserver, controller manager,
  scheduler and kwok per cluster, on 127.0.0.1;
- :mod:`infra.lab.cli`: ``dcops lab up | status | down`` and ``dcops provision``.
"""
