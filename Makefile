# esc50-hf: `make app` (set up, then serve the demo), `make test` (set up, then run every test; what CI runs) and
# `make test-fast` (the same without the tests marked slow: end-to-end launchers, servers, browser).
SHELL := /bin/bash
PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
export HF_HUB_DISABLE_TELEMETRY := 1
export GRADIO_ANALYTICS_ENABLED := False

.PHONY: setup system-deps test-deps test test-fast app train lint

setup: system-deps $(VENV)/.installed

# FFmpeg: shared libraries for torchcodec (every audio decode), the binary for the tests' and benchmarks' files.
system-deps:
	@command -v ffmpeg >/dev/null || { $(SUDO) apt-get update -qq && $(SUDO) apt-get install -y -qq ffmpeg; }

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e ".[dev]"
	$(PY) -m pip check
	touch $@

# Headless Chromium (Debian's) for the browser tests of the web demo, and the pinned ONNX Runtime Web (npm
# registry, integrity-checked, cached in ~/.cache/esc50-hf) that `esc50-hf web` copies into the static page.
test-deps: setup
	@command -v chromium >/dev/null || { $(SUDO) apt-get update -qq && $(SUDO) apt-get install -y -qq chromium; }
	$(PY) -c "from esc50_hf.serving.web import fetch_onnxruntime_web; print(fetch_onnxruntime_web())"

# Two worker processes (pytest-xdist), a test file each at a time: servers, browsers and fresh processes wait on
# I/O and start-up, so a second file runs meanwhile. A file's module fixtures (a training, a server) stay in one worker.
test: test-deps
	HF_HUB_OFFLINE=1 $(PY) -m pytest -n 2 --dist loadfile

test-fast: test-deps
	HF_HUB_OFFLINE=1 $(PY) -m pytest -m "not slow"

app: setup
	$(PY) app.py

train: setup
	$(VENV)/bin/accelerate launch train.py --config configs/esc50.yaml $(ARGS)

lint: setup
	$(VENV)/bin/ruff check . && $(VENV)/bin/ruff format --check .
