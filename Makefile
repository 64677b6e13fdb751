# The two commands: `make test` runs the tests, `make demo` runs the main job.
# Each does its own set-up and is idempotent: the system packages it needs
# (scripts/system-packages: installed when root, else one line saying what to
# run), a virtualenv with the pinned install, the images when Docker is used
# (make test builds them before pytest: scripts/test-images says why).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
SYSTEM := PYTHON="$(PYTHON)" VENV="$(VENV)" bash scripts/system-packages

.PHONY: setup test test-unit demo clean

$(STAMP): pyproject.toml constraints.txt setup.py
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --disable-pip-version-check -c constraints.txt -e '.[test]'
	touch $(STAMP)

setup: $(STAMP)

# The suite on $(JOBS) pytest-xdist workers: most of its time is experiments waiting on
# recovery, not CPU, so 4 on an idle machine, 3 on a lightly used one, 2 when the CPU is
# already over half busy (scripts/test-jobs says why). Files that act on the whole engine share one worker (tests/conftest.py).
JOBS ?= $(shell $(PYTHON) scripts/test-jobs 2>/dev/null || echo 3)
test:
	@$(SYSTEM) test
	@$(MAKE) --no-print-directory setup
	$(BIN)/python scripts/test-images
	$(BIN)/pytest -n $(JOBS)

test-unit:
	@$(MAKE) --no-print-directory setup
	$(BIN)/pytest tests/unit

clean: $(STAMP)
	$(BIN)/roomquake clean

# The main job: the launch incident in miniature, twice: a join surge on edges
# without admission control (heartbeats go late, the room is relaunched though no
# server was lost, listeners are dropped, joins time out, most of the crowd stays
# out: a known weakness, as declared), then the same surge with it (shed with
# Retry-After, nothing relaunched, everyone in). On Docker when an engine answers, else as
# local processes. Prints each timeline, verdict, journal and report.
demo:
	@$(SYSTEM) demo
	@$(MAKE) --no-print-directory setup
	@$(BIN)/python -c "from chaos.stack import default_backend as d; print('roomquake demo: backend', d(), '(docker when an engine answers, else local processes)')"
	$(BIN)/roomquake run --report experiments/launch-surge-unprotected.yaml experiments/launch-surge.yaml
