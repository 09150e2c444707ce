# Two-command set-up: `make demo` and `make test` each create .venv if absent.
# TORCH_SPEC / CONSTRAINTS can be overridden on a GPU cluster (e.g. TORCH_SPEC=torch==2.13.0 with CUDA wheels).
PY        ?= python3
VENV      ?= .venv
BIN        = $(VENV)/bin
TORCH_SPEC ?= torch==2.13.0
CONSTRAINTS ?= constraints.txt
PYTEST_ARGS ?=
# The suite spends most of its time waiting on Ray start-up and sleeping fault-injection trials
# (one process uses ~0.6 of 2 cores), so two pytest workers cut its wall time by a third; TEST_WORKERS=0 runs it serially.
TEST_WORKERS ?= 2
export MLFLOW_ALLOW_FILE_STORE = true
export PYTHONDONTWRITEBYTECODE = 1

.PHONY: install demo test test-slow bench reproduce clean constraints

$(BIN)/.installed: pyproject.toml $(CONSTRAINTS)
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	# torch first and pinned, so monai/torchdiffeq never pull a CUDA build (see README, Install)
	$(BIN)/python -m pip install -q "$(TORCH_SPEC)"
	$(BIN)/python -m pip install -q -c $(CONSTRAINTS) -e '.[dev]'
	touch $@

install: $(BIN)/.installed

demo: install
	@mkdir -p demo
	ABLATE_HOME=$(CURDIR)/demo $(BIN)/ablate run sweeps/quick.yaml --plot demo/quick.png

test: install
	$(BIN)/python -m pytest -q -n $(TEST_WORKERS) --dist worksteal $(PYTEST_ARGS)

test-slow: install
	$(BIN)/python -m pytest -q -m slow $(PYTEST_ARGS)

bench: install
	$(BIN)/python -m benchmarks.run_all

# Re-pin constraints.txt to what the venv holds now (after a tested upgrade); CI and `make install` use it.
constraints: install
	{ echo "# Every dependency pinned at the versions the test suite passed with (make constraints writes it)."; \
	  echo "# make installs torch (TORCH_SPEC) first, then the project with -c this file; on a GPU cluster pass"; \
	  echo "# CONSTRAINTS=your/file with your torch build (README, Install notes)."; \
	  $(BIN)/python -m pip freeze --exclude-editable | sed -e 's/^torch==\([0-9.]*\)+cpu$$/torch==\1/'; } > $(CONSTRAINTS).new
	mv $(CONSTRAINTS).new $(CONSTRAINTS)

clean:
	rm -rf demo ablate_runs .pytest_cache
