# Two commands are all the set-up there is: `make run` and `make test` create .venv on first use.
SHELL := /bin/bash
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-$(shell cat requirements/dev.txt requirements/runtime.txt | cksum | cut -d' ' -f1)
# The Lambda runtime is Python 3.13: prefer it for the venv (pyenv's shim may hide it), else python3 >= 3.11.
PYTHON ?= $(shell for p in python3.13 $$HOME/.pyenv/versions/3.13*/bin/python3.13 python3; do \
	$$p -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null && { echo $$p; break; }; done)
PORT ?= 3000
ARGS ?=

.PHONY: install test run send synth deploy diff destroy bench clean

install: $(STAMP)

$(STAMP): requirements/dev.txt requirements/runtime.txt
	@test -n "$(PYTHON)" || { echo "Python 3.11 or newer is needed (3.13 preferred)"; exit 1; }
	@test -x $(PY) || { echo "creating $(VENV) with $(PYTHON)"; $(PYTHON) -m venv $(VENV); }
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements/dev.txt
	@rm -f $(VENV)/.installed-*; touch $@

test: $(STAMP)
	$(PY) -m pytest $(ARGS)

run: $(STAMP)
	$(PY) -m local.run

send: $(STAMP)
	@test -n "$(FILE)" || { echo "usage: make send FILE=examples/sis_batch_created.json [VIA=https|sqs|eventbridge]"; exit 2; }
	$(PY) -m local.send $(FILE) $(if $(VIA),--via $(VIA))

clean:
	rm -rf $(VENV) cdk.out .build .local .pytest_cache .hypothesis
