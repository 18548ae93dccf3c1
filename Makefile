# Two entry points: `make demo` runs the main job, `make test` runs the suite.
# Both create .venv and install the project on first use, and reuse it afterwards.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
INSTALLED := $(VENV)/.installed

.PHONY: demo demo-drift demo-backtest test test-quick bench ui clean

$(INSTALLED): pyproject.toml
	@echo "Setting up $(VENV): the project and its dependencies (torch CPU, xgboost, lightgbm, catboost, dagster)."
	@echo "The first time this takes about 3 to 5 minutes and 2.5 GB; later runs reuse it. pip's progress follows."
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --disable-pip-version-check --progress-bar on -e '.[dev]' 2> $(VENV)/install.log \
		|| { grep -v "is ignored: it is neither" $(VENV)/install.log; exit 1; }
	touch $(INSTALLED)

demo: $(INSTALLED)
	$(BIN)/python -m demo.run

# The drift loop: drifted dates -> drift CRITICAL -> retraining -> promotion (after `make demo`).
demo-drift: $(INSTALLED)
	$(BIN)/python -m demo.drift

# A backtest of the demo market: a bundle on earlier dates, 21 dates x 4 horizons scored,
# realized, and the monthly backtest reports (see README, Backtests).
demo-backtest: $(INSTALLED)
	$(BIN)/python -m demo.backtest

# Two test workers on two cores: one OpenMP thread each, or torch oversubscribes the CPU.
test: $(INSTALLED)
	OMP_NUM_THREADS=1 $(BIN)/python -m pytest -n 2 --dist loadgroup

# The inner loop: the suite without the tests marked slow (webserver, CLI backfill); CI runs `make test`.
test-quick: $(INSTALLED)
	OMP_NUM_THREADS=1 $(BIN)/python -m pytest -n 2 --dist loadgroup -m "not slow"

bench: $(INSTALLED)
	$(BIN)/python -m benchmarks.run

# The UI shows only the dates of data/ohlcv (unless INFERENCE_PARTITIONS_START/END are set).
ui: $(INSTALLED)
	mkdir -p .dagster_home
	test -f .dagster_home/dagster.yaml || cp demo/dagster.yaml .dagster_home/dagster.yaml
	dates=$$(ls data/ohlcv 2>/dev/null | sed -n 's/^date=//p' | sort); \
	INFERENCE_PARTITIONS_START=$${INFERENCE_PARTITIONS_START:-$$(echo "$$dates" | head -n 1)} \
	INFERENCE_PARTITIONS_END=$${INFERENCE_PARTITIONS_END:-$$(echo "$$dates" | tail -n 1)} \
	DAGSTER_HOME=$(CURDIR)/.dagster_home exec $(BIN)/python scripts/serve_ui.py

clean:
	rm -rf $(VENV) .dagster_home data deployment/bundles
