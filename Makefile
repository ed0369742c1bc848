# The two commands of the README. Each builds .venv from nothing on first use.
#   make demo   - data -> train -> evaluate -> push (local) on the bundled model and our incident data
#   make test   - the test suite (set-up included); make test-slow adds the minutes-long quality checks
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
# CI (CI=true) pins torch to 2.13.0, a CPU build that installs in seconds on CI's machines. Everyone else gets
# the normal torch wheel for their platform; set TORCH_SPEC to choose one, e.g. TORCH_SPEC=torch==2.13.0.
TORCH_SPEC ?= $(if $(filter true 1,$(CI)),torch==2.13.0,)
# No download in the demo or the tests: the bundled model and local data are all they use.
OFFLINE := HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 HF_HUB_DISABLE_TELEMETRY=1 TOKENIZERS_PARALLELISM=false

.PHONY: demo test test-slow lint clean-venv

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(if $(TORCH_SPEC),$(PY) -m pip install -q "$(TORCH_SPEC)")
	$(PY) -m pip install -q ".[test]"
	touch $@

demo: $(VENV)/.installed
	$(OFFLINE) $(PY) -m data configs/quickstart.yaml
	$(OFFLINE) $(PY) -m train configs/quickstart.yaml
	$(OFFLINE) $(PY) -m evaluate configs/quickstart.yaml
	$(OFFLINE) $(PY) -m train.push configs/quickstart.yaml push.local_dir=published/quickstart
	@echo "Report: $(CURDIR)/runs/quickstart/eval/report.html (published model: $(CURDIR)/published/quickstart)"

test: $(VENV)/.installed
	$(OFFLINE) $(PY) -m pytest -q $(PYTEST_ARGS)

test-slow: $(VENV)/.installed
	$(OFFLINE) $(PY) -m pytest -q -m slow $(PYTEST_ARGS)

lint: $(VENV)/.installed
	$(VENV)/bin/ruff check .

clean-venv:
	rm -rf $(VENV)
