# sfed: `make demo` sets everything up and runs a job through the federation; `make test` runs the suite.
SHELL := /bin/bash
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
DEB_PACKAGES := slurm-wlm munge openssh-server lua5.1 slurmdbd mariadb-client

.PHONY: deps venv proto lint unit test demo lab-up lab-down clean

deps:  ## Debian packages (root); skipped when already present
	@if ! command -v slurmctld >/dev/null || ! command -v munged >/dev/null || ! command -v sshd >/dev/null && ! test -x /usr/sbin/sshd || ! command -v lua5.1 >/dev/null || ! test -x /usr/sbin/slurmdbd || ! command -v mysql >/dev/null; then \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $(DEB_PACKAGES); fi

$(BIN)/python: pyproject.toml
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[dev]'
	touch $@

venv: $(BIN)/python

proto: venv  ## regenerate scheduler/proto_gen from proto/
	$(BIN)/python proto/generate.py

lint: venv
	$(BIN)/ruff check .
	$(BIN)/ruff format --check scheduler tests benchmarks deploy
	$(BIN)/mypy scheduler deploy/sfedlab

test: deps venv lint
	$(BIN)/python -m pytest -q -p no:cacheprovider

lab-up: deps venv
	$(BIN)/python deploy/lab up

lab-down:
	$(PY) deploy/lab down

demo: deps venv
	$(BIN)/python deploy/demo

clean: lab-down
	rm -rf $(VENV) .lab demo
