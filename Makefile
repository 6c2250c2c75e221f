# The two commands of the quick start are `make lab` and `make test`; both set up .venv first.
# Variables: PYTHON (the interpreter that creates .venv), EXTRAS (pip extras; dev,gpu on an NVIDIA
# machine), LAB_ARGS (extra arguments for JupyterLab, e.g. --no-browser --port=8889).
PYTHON ?= python3
EXTRAS ?= dev
LAB_ARGS ?=
VENV := .venv
BIN := $(VENV)/bin
# JupyterLab refuses to start as root (containers, some cloud machines) unless told it is on purpose.
ROOT_ARGS := $(if $(filter 0,$(shell id -u)),--allow-root)

.PHONY: help lab test lint format tutorial browser gpu-benchmark clean
.DEFAULT_GOAL := help

help:
	@echo "make lab       set up .venv and open JupyterLab on notebooks/"
	@echo "make test      set up .venv and run every test (lint, unit tests, nbval over notebooks/ in the smoke profile)"
	@echo "make tutorial  execute every notebook in the active profile and write HTML under build/tutorial/"
	@echo "make browser   install Chromium for the browser test if none is found (make test does it)"
	@echo "make format    format the code and notebooks with ruff"
	@echo "make gpu-benchmark  measure what a GPU changes (benchmarks/gpu.py, at most 8 minutes on one GPU)"
	@echo "make clean     remove build/ and .venv/ (never data/)"

# Installed again whenever pyproject.toml changes. The stamp names the extras, so EXTRAS=dev,gpu reinstalls.
$(VENV)/.installed-$(EXTRAS): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 10) else "unet-tutorial needs Python 3.10 or newer; found " + sys.version.split()[0] + ". Run: make PYTHON=python3.11 ...")'
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet --editable '.[$(EXTRAS)]'
	@rm -f $(VENV)/.installed-*
	@touch $@

lab: $(VENV)/.installed-$(EXTRAS)
	@$(BIN)/python -m unet_helpers.config
	$(BIN)/jupyter lab notebooks $(ROOT_ARGS) $(LAB_ARGS)

test: $(VENV)/.installed-$(EXTRAS) lint browser
	UNET_PROFILE=smoke $(BIN)/python -m pytest -v

lint: $(VENV)/.installed-$(EXTRAS)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: $(VENV)/.installed-$(EXTRAS)
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

# tools/render_streams.py is `jupyter nbconvert` plus a preprocessor that leaves what a terminal shows of each
# stream: one line per epoch of Keras's progress bar, not every step of it (JupyterLab keeps the live bar).
# TF_CPP_MIN_LOG_LEVEL=1 drops TensorFlow's C++ INFO lines (CPU features, XLA set-up), keeping its warnings
# and errors; set it yourself (0: everything) to see them all.
tutorial: $(VENV)/.installed-$(EXTRAS)
	@$(BIN)/python -m unet_helpers.config
	@mkdir -p build/tutorial
	@for notebook in notebooks/*.ipynb; do \
		echo "executing $$notebook"; \
		TF_CPP_MIN_LOG_LEVEL=$${TF_CPP_MIN_LOG_LEVEL:-1} $(BIN)/python tools/render_streams.py \
			--to html --execute --ExecutePreprocessor.timeout=3600 --output-dir build/tutorial "$$notebook" \
			|| exit 1; \
	done
	@$(BIN)/python tools/tutorial_index.py --notebooks notebooks --out build/tutorial
	@echo "HTML written to build/tutorial/: open build/tutorial/index.html"

# Chromium for tests/test_browser.py, which runs a notebook in JupyterLab in a real browser. Nothing happens
# if the test finds one (UNET_CHROMIUM, chromium on the PATH, Playwright's own). Else, where apt-get exists
# (Debian, Ubuntu), it installs Debian's chromium, through sudo when not root; elsewhere it prints what to
# install. It never stops `make test`: without a browser, the browser test fails with that same line.
SUDO := $(if $(filter 0,$(shell id -u)),,sudo)
browser: $(VENV)/.installed-$(EXTRAS)
	@$(BIN)/python tests/jupyterlab_browser.py 2>/dev/null || { \
		if command -v apt-get >/dev/null 2>&1; then \
			mkdir -p build; \
			echo "installing Chromium for the browser test: apt-get install chromium$(if $(SUDO), (through sudo)) (log: build/apt-chromium.log)"; \
			{ $(SUDO) apt-get update && $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y chromium; } \
				>build/apt-chromium.log 2>&1 || tail -n 3 build/apt-chromium.log; \
		fi; \
		$(BIN)/python tests/jupyterlab_browser.py || true; \
	}

# On an NVIDIA machine: make gpu-benchmark EXTRAS=dev,gpu (the table goes to benchmarks/results/gpu.json).
gpu-benchmark: $(VENV)/.installed-$(EXTRAS)
	TF_CPP_MIN_LOG_LEVEL=$${TF_CPP_MIN_LOG_LEVEL:-1} $(BIN)/python benchmarks/gpu.py

clean:
	rm -rf build $(VENV)
