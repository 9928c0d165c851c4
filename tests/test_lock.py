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


def locked_lines() -> dict[str, tuple[str, list[str], set[str]]]:
    """name -> (version, hashes, extras) from the lock."""
    out: dict[str, tuple[str, list[str], set[str]]] = {}
    text = LOCK.read_text(encoding="utf-8")
    for block in re.split(r"\n(?=[A-Za-z0-9])", text):
        first = block.split("\n", 1)[0]
        if first.startswith("#") or not first.strip():
            continue
        m = re.match(r"([A-Za-z0-9_.-]+)(?:\[([A-Za-z0-9_.,-]+)\])?==([^ \\]+)", first)
        assert m, f"not an exact pin: {first!r}"
        hashes = re.findall(r"--hash=sha256:([0-9a-f]{64})\b", block)
        extras = {canonicalize_name(e) for e in (m.group(2) or "").split(",") if e}
        out[canonicalize_name(m.group(1))] = (m.group(3), hashes, extras)
    return out


def locked() -> dict[str, tuple[str, list[str]]]:
    """name -> (version, hashes) from the lock."""
    return {n: (v, h) for n, (v, h, _) in locked_lines().items()}


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


def test_extras_that_locked_packages_need_are_pinned_with_the_extra() -> None:
    """A package that a locked package wants with an extra (weasyprint: `fonttools[woff]`) is
    pinned as `name[extra]==X`. Pinned as plain `name==X`, the pip of a fresh virtualenv (23.x)
    takes the extra as unpinned, resolves it to the newest release on the index and
    --require-hashes refuses the install: CI broke that way the day fonttools 4.69 appeared."""
    from importlib.metadata import distributions

    lock = locked_lines()
    missing: list[str] = []
    for dist in distributions():
        name = canonicalize_name(dist.metadata["Name"])
        if name not in lock:
            continue
        own = lock[name][2] | ({"dev"} if name == "dcops" else set())
        for line in dist.requires or []:
            r = Requirement(line)
            if r.marker is not None and not any(r.marker.evaluate({"extra": e}) for e in own | {""}):
                continue
            dep = canonicalize_name(r.name)
            want = {canonicalize_name(e) for e in r.extras}
            if want and dep in lock and not want <= lock[dep][2]:
                missing.append(f"{name} needs {r.name}[{','.join(sorted(want))}]")
    assert not missing, f"{missing}: the lock pins them without the extra; run scripts/lock-python (--no-strip-extras)"
