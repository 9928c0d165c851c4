"""requirements.lock: every package pinned with the sha256 of its files, covering every direct
dependency of dcops[dev] (and its build backend) at the version pyproject.toml pins, and
installed with --require-hashes. The install itself is proved by scripts/install-python (with
VENV=<a throwaway dir> it installs from the lock into a new virtualenv)."""

from __future__ import annotations

import re
import tomllib

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from infra.paths import REPO

LOCK = REPO / "requirements.lock"


def locked() -> dict[str, tuple[str, list[str]]]:
    """name -> (version, hashes) from the lock."""
    out: dict[str, tuple[str, list[str]]] = {}
    text = LOCK.read_text(encoding="utf-8")
    for block in re.split(r"\n(?=[A-Za-z0-9])", text):
        first = block.split("\n", 1)[0]
        if first.startswith("#") or not first.strip():
            continue
        m = re.match(r"([A-Za-z0-9_.-]+)==([^ \\]+)", first)
        assert m, f"not an exact pin: {first!r}"
        hashes = re.findall(r"--hash=sha256:([0-9a-f]{64})\b", block)
        out[canonicalize_name(m.group(1))] = (m.group(2), hashes)
    return out


def test_every_locked_package_has_hashes() -> None:
    lock = locked()
    assert len(lock) > 50
    missing = [n for n, (_, h) in lock.items() if not h]
    assert not missing, f"no --hash for {missing}: run scripts/lock-python"


def test_lock_covers_pyproject_at_its_pins() -> None:
    py = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))
    reqs = [*py["project"]["dependencies"], *py["project"]["optional-dependencies"]["dev"],
            *py["build-system"]["requires"]]
    lock = locked()
    for line in reqs:
        r = Requirement(line)
        name = canonicalize_name(r.name)
        assert name in lock, f"{r} is not in requirements.lock: run scripts/lock-python"
        assert r.specifier.contains(lock[name][0], prereleases=True), \
            f"{r}: the lock has {lock[name][0]}; run scripts/lock-python"


def test_install_requires_hashes() -> None:
    script = (REPO / "scripts" / "install-python").read_text(encoding="utf-8")
    assert re.search(r"pip install [^\n]*--require-hashes -r requirements\.lock", script)
    assert "--no-deps --no-build-isolation -e ." in script
    assert not re.search(r"pip install [^\n]*-e '?\.\[", script), "an unhashed install of .[dev] resolves from the index"
