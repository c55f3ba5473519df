# The README's two commands: `make demo` and `make test`. Both install what they need
# (apt packages, the venv from the lock file, the sandbox) and are fast the second time.
SHELL := /bin/bash
VENV := .venv
PY := $(VENV)/bin/python
APT_PACKAGES := packer debootstrap socat util-linux iproute2 openssh-client chromium fonts-liberation golang-go golang-github-vmware-govmomi-dev
PYTEST_ARGS ?=

.PHONY: setup demo test lint sandbox-up sandbox-down bench clean

setup: .apt-installed $(VENV)/.installed

.apt-installed:
	@missing=""; for p in $(APT_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  echo "installing apt packages:$$missing"; \
	  apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q $$missing; \
	fi
	@touch $@

$(VENV)/.installed: requirements.txt requirements-dev.txt constraints.txt
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install -q --disable-pip-version-check -r requirements-dev.txt -c constraints.txt
	@touch $@

sandbox-up: setup
	$(PY) -m sandbox up

sandbox-down:
	-$(PY) -m sandbox down

demo: setup
	bash scripts/demo.sh

test: setup
	bash scripts/test.sh $(PYTEST_ARGS)

lint: setup
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

bench: setup
	$(PY) bench/parse_time.py

clean: sandbox-down
	rm -rf .airflow .sandbox .apt-installed
