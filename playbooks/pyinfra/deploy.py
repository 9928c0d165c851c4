"""pyinfra deploy of the WAN endpoints (thin; the mechanism is in dcops_endpoint.py).

`dcops wan apply --engine pyinfra` drives this same code through the pyinfra API. To run it
by hand with the pyinfra CLI, from inside the lab's management namespace, use the inventory
`dcops wan apply` leaves behind (rendered host data included):

    ip netns exec <lab>-mgmt .venv/bin/pyinfra ~/.cache/dcops/labs/<lab>/wan/pyinfra_inventory.py \
        playbooks/pyinfra/deploy.py --sudo [--dry]
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from pyinfra import host  # noqa: E402

from dcops_endpoint import apply_endpoint  # noqa: E402

apply_endpoint(host.data)
