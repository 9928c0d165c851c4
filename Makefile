# dcops: the two entry points are `make demo` (the whole job on the lab) and
# `make test` (the test suite). Both install everything first (idempotent).
SHELL := /bin/bash
PROVINCE ?= stacks/province-lab.yaml

.PHONY: install demo test lint clean-lab

install:
	scripts/install-system
	scripts/install-tools
	scripts/install-python

demo: install
	.venv/bin/dcops run --province $(PROVINCE)

test: install
	.venv/bin/python -m pytest

lint:
	.venv/bin/ansible-lint playbooks

clean-lab:
	.venv/bin/dcops lab down
