"""The benchmark cases run as root and write province files, apply logs and results into a
working directory: it must be new, private (0700, ours) and unpredictable, never a fixed
``/tmp/dcops-bench-<name>`` that another local user could create first or fill with symlinks.
No lab needed."""

from __future__ import annotations

import os
import re
import shutil
import tempfile
from pathlib import Path

from infra.bench import labhosts
from infra.paths import REPO
from infra.validate import load_province

BENCH = REPO / "infra" / "bench"


def test_workdir_is_new_private_and_unpredictable(tmp_path: Path) -> None:
    name = "wdtest"
    fixed = Path(tempfile.gettempdir()) / f"dcops-bench-{name}"
    planted = not fixed.exists() and not fixed.is_symlink()
    if planted:  # what an attacker would leave at the old fixed path: a symlink to somewhere that matters
        fixed.symlink_to(tmp_path)
    said: list[str] = []
    made = [labhosts.workdir(name, said.append) for _ in range(3)]
    try:
        assert len({str(d) for d in made}) == 3, made
        for d in made:
            st = os.lstat(d)
            assert d.is_dir() and not d.is_symlink()
            assert st.st_mode & 0o777 == 0o700, oct(st.st_mode)
            assert st.st_uid == os.geteuid()
            assert d.parent == Path(tempfile.gettempdir()) and d.name.startswith(f"dcops-bench-{name}-")
            assert d != fixed and len(d.name) > len(f"dcops-bench-{name}-") + 6  # a random part
            assert str(d) in " ".join(said)
        # a case writes its province file there, not through the planted link
        _, pfile = labhosts.province_of(load_province(REPO / "stacks" / "province-lab.yaml"), 2, made[0])
        assert pfile.parent == made[0] and pfile.exists()
        assert not list(tmp_path.iterdir())
    finally:
        for d in made:
            shutil.rmtree(d, ignore_errors=True)
        if planted:
            fixed.unlink()


def test_no_case_uses_a_fixed_tmp_path() -> None:
    for p in sorted(BENCH.glob("*.py")):
        src = p.read_text(encoding="utf-8")
        code = re.sub(r'"""(?:.|\n)*?"""', "", src)  # docstrings may tell the story
        assert not re.search(r"""["'][^"'\n]*/tmp/""", code), f"{p.name} writes under a fixed /tmp path"
    for case in ("wan", "memory", "checks"):
        src = (BENCH / f"{case}.py").read_text(encoding="utf-8")
        assert "labhosts.workdir(name" in src, f"{case}.py does not make its working directory with labhosts.workdir"
