# dcops: the two entry points are `make demo` (the whole job on the lab) and
# `make test` (the test suite). Both install everything first (idempotent).
SHELL := /bin/bash
PROVINCE ?= stacks/province-lab.yaml

.PHONY: install demo test test-fast lint clean-lab

install:
	scripts/install-system
	scripts/install-tools
	scripts/install-python

demo: install
	.venv/bin/dcops run --province $(PROVINCE)

test: install
	.venv/bin/python -m pytest

# The fast loop: every test that needs no lab (seconds to a few minutes); CI still runs everything.
test-fast:
	.venv/bin/python -m pytest -m "not lab" -q

lint:
	.venv/bin/ansible-lint playbooks

clean-lab:
	.venv/bin/dcops lab down
