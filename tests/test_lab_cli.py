"""`dcops lab up` refuses bad arguments before it starts anything (no lab needed)."""

from __future__ import annotations

from conftest import dcops
from infra.paths import lab_dir


def test_unknown_site_is_bad_input_and_nothing_starts():
    r = dcops("lab", "up", "--name", "tnosite", "--site", "nosuch")
    assert r.returncode == 2, r.stdout + r.stderr
    assert "unknown site(s) nosuch" in r.stderr and "nothing started" in r.stderr
    assert not lab_dir("tnosite").exists()
