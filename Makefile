# dcops: the two entry points are `make demo` (the whole job on the lab) and
# `make test` (the test suite). Both install everything first (idempotent).
SHELL := /bin/bash
PROVINCE ?= stacks/province-lab.yaml

.PHONY: install demo test test-fast lint clean-lab

# The venv (mostly downloads) is made while the Go tools build (CPU): they do not depend on each other.
install:
	scripts/install-system
	scripts/install-python & py=$$!; scripts/install-tools; t=$$?; wait $$py; p=$$?; \
	  if [ $$p -ne 0 ]; then echo "scripts/install-python failed (exit $$p)" >&2; fi; exit $$(( t ? t : p ))

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
