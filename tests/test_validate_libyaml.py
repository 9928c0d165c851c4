"""The province file read with libyaml (PyYAML's C parser) gives what the pure-Python loader gives:
the same data, the same line of every path, the same refusals (issue 18: the 700-site file)."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from infra import validate as v

REPO = Path(__file__).resolve().parents[1]
FILES = [REPO / "stacks" / "province-lab.yaml", REPO / "stacks" / "scale" / "province-thanhhoa-700.yaml"]


def test_libyaml_is_there():
    assert v._CLoader is not None, "PyYAML without libyaml: install libyaml-dev and reinstall pyyaml (scripts/install-python)"


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.name)
def test_c_and_python_compose_alike(path):
    text = path.read_text(encoding="utf-8")
    node_c, data_c = v._compose_c(text)
    node_py, data_py = v._compose_py(text)
    assert data_c == data_py
    assert yaml.serialize(node_c) == yaml.serialize(node_py)
    lines = v._compose(text)[1]
    assert len(lines) > 100 and lines["wan.sites[0]"] > 1


@pytest.mark.parametrize("text,words", [
    ("a: &x 1\nb: *x\n", "YAML anchor &x is not allowed"),
    ("a: 1\nb: *y\n", "YAML alias *y is not allowed"),
    ("a: " + "[" * (v.MAX_DEPTH + 1) + "]" * (v.MAX_DEPTH + 1) + "\n", f"nesting deeper than {v.MAX_DEPTH} levels"),
])
def test_c_prepass_refuses_like_the_python_loader(text, words):
    with pytest.raises(v.YamlRefused) as c:
        v._compose_c(text)
    with pytest.raises(v.YamlRefused) as py:
        v._compose_py(text)
    assert words in c.value.message and c.value.message == py.value.message
    assert (c.value.problem_mark.line, c.value.problem_mark.column) == (py.value.problem_mark.line, py.value.problem_mark.column)


def test_just_deep_enough_passes_both():
    text = "a: " + "[" * (v.MAX_DEPTH - 1) + "]" * (v.MAX_DEPTH - 1) + "\n"
    assert v._compose_c(text)[1] == v._compose_py(text)[1]


def test_syntax_error_reported_by_the_python_loader():
    model, ps = v.check_text("a: [1, 2\nb: 3\n")
    assert model is None and ps[0].message.startswith("not valid YAML") and ps[0].line
