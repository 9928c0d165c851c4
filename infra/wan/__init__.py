"""The WAN rollout: ``dcops wan apply``.

- :mod:`infra.wan.inventory`: hosts and groups from the province file, ``--limit``, the
  generated Ansible inventory (host_vars = the rendered state);
- :mod:`infra.wan.engines`: the two passes (keys, then the rendered state) with Ansible or
  pyinfra, inside the lab's management namespace;
- :mod:`infra.wan.pyinfra_engine`: the pyinfra side, run in that namespace;
- :mod:`infra.wan.results`: progress per host and the summary;
- :mod:`infra.wan.cli`: the ``wan`` sub-commands.

The desired state itself is rendered by :mod:`infra.render.endpoint`.
"""
