"""A large lab makes room in the kernel's neighbour table (one table for every namespace on this
kernel): 700 sites overflowed the default 1024 entries and stalled the rollout (issue 18)."""

from pathlib import Path

from infra.lab.hosts import NEIGH_PER_SITE, _neighbour_room


def _proc(tmp_path: Path, t1: int, t2: int, t3: int) -> Path:
    for k, v in (("gc_thresh1", t1), ("gc_thresh2", t2), ("gc_thresh3", t3)):
        (tmp_path / k).write_text(f"{v}\n")
    return tmp_path


def _read(root: Path) -> list[int]:
    return [int((root / f"gc_thresh{i}").read_text()) for i in (1, 2, 3)]


def test_700_sites_raise_the_defaults(tmp_path):
    root = _proc(tmp_path, 128, 512, 1024)
    said = _neighbour_room(700, root)
    t1, t2, t3 = _read(root)
    assert t3 >= 700 * NEIGH_PER_SITE and t1 < t2 < t3, (t1, t2, t3)
    assert "gc_thresh3 1024->" in said


def test_a_small_lab_changes_nothing_and_nothing_is_ever_lowered(tmp_path):
    root = _proc(tmp_path, 128, 512, 1024)
    assert _neighbour_room(10, root) == "" and _read(root) == [128, 512, 1024]
    big = _proc(tmp_path, 4096, 16384, 65536)
    assert _neighbour_room(700, big) == "" and _read(big) == [4096, 16384, 65536]
