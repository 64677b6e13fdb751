# The two commands: `make test` runs the tests, `make demo` runs the main job.
# Each does its own set-up (virtualenv, install, images) and is idempotent.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp

.PHONY: setup test test-unit demo bench clean

$(STAMP): pyproject.toml constraints.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --disable-pip-version-check -c constraints.txt -e '.[test]'
	touch $(STAMP)

setup: $(STAMP)

test: $(STAMP)
	$(BIN)/pytest

test-unit: $(STAMP)
	$(BIN)/pytest tests/unit

clean: $(STAMP)
	$(BIN)/roomquake clean

# The main job: the launch incident in miniature (join surge + slow state store:
# listeners kicked, the room survives), on Docker when an engine answers, else
# as local processes. Prints the timeline, the verdict and the journal's path.
demo: $(STAMP)
	@$(BIN)/python -c "from chaos.stack import default_backend as d; print('roomquake demo: backend', d(), '(docker when an engine answers, else local processes)')"
	$(BIN)/roomquake run --report experiments/launch-surge.yaml
