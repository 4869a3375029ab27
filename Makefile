# maskgct: run `make help` for the targets.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.DEFAULT_GOAL := help
.PHONY: help install test lint format

help: ## Show this help
	@awk 'BEGIN {FS = ":.*## "} /^[a-zA-Z0-9_-]+:.*## / {printf "  \033[36m%-22s\033[0m %s\n", $$1, $$2}' $(MAKEFILE_LIST)

$(STAMP): pyproject.toml constraints.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	# torch first, pinned to the CPU wheel; everything else under the same pin so no CUDA build is pulled.
	$(PY) -m pip install -q torch==2.13.0
	$(PY) -m pip install -q -c constraints.txt -e ".[dev,eval]"
	touch $(STAMP)

install: $(STAMP) browser ## Create .venv and install maskgct with its eval and dev extras (quick when up to date)

# tests/test_browser.py drives Debian's chromium; apt-get takes about 50 s on a fresh machine (as root, or sudo).
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
.PHONY: browser serve bench-serve
browser: ## Install chromium and chromium-driver with apt-get for the browser test (nothing when present)
	command -v chromium >/dev/null && command -v chromedriver >/dev/null || \
	  ($(SUDO) apt-get update -q && $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium chromium-driver)

serve: install ## Serve the default model: the HTTP API and the web page on http://127.0.0.1:8000/
	$(VENV)/bin/maskgct serve --ui

bench-serve: install ## Load test of the HTTP server on the tiny fixture model (8 clients, 48 requests)
	$(PY) bench/serve_load.py --clients 8 --requests 48

test: install ## Run the test suite (installs first if needed)
	$(PY) -m pytest -q

lint: install ## Check the code with ruff
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

format: install ## Reformat the code with ruff
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

# Training one network inside a recipe: RECIPE (a recipe folder), EXP (conf/experiment), SIZE (tiny|official),
# TRAINER (cpu|gpu|ddp), ARGS (more hydra overrides). Reruns resume from <recipe>/exp/<task>/checkpoints.
RECIPE ?= egs/synth/tts1
EXP ?= synth_tiny
SIZE ?= tiny
TRAINER ?= cpu
ARGS ?=
TRAIN = cd $(RECIPE) && $(CURDIR)/$(PY) -m maskgct.train experiment=$(EXP) trainer=$(TRAINER)
.PHONY: train-t2s train-s2a train-semantic-codec train-acoustic-codec demo demo-train

train-t2s: install ## Train T2S on RECIPE's dump/train (make train-t2s RECIPE=egs/synth/tts1 EXP=synth_tiny)
	$(TRAIN) task=t2s model=t2s_$(SIZE) exp_dir=exp/t2s data.train_dump=dump/train $(ARGS)

train-s2a: install ## Train S2A 1-layer, then S2A full, on RECIPE's dump/train
	$(TRAIN) task=s2a_1layer model=s2a_1layer_$(SIZE) exp_dir=exp/s2a_1layer data.train_dump=dump/train $(ARGS)
	$(TRAIN) task=s2a_full model=s2a_full_$(SIZE) exp_dir=exp/s2a_full data.train_dump=dump/train $(ARGS)

train-semantic-codec: install ## Train the semantic codec on RECIPE's data/train (ARGS: task.w2v_bert=... task.stats=...)
	$(TRAIN) task=semantic_codec model=semantic_codec_$(SIZE) exp_dir=exp/semantic_codec data.train_dir=data/train $(ARGS)

train-acoustic-codec: install ## Train the acoustic codec (GAN) on RECIPE's data/train
	$(TRAIN) task=acoustic_codec model=acoustic_codec_$(SIZE) exp_dir=exp/acoustic_codec data.train_dir=data/train $(ARGS)

demo: install ## Clone two held-out voices with the shipped default model (4 min on 2 busy cores): demo/out.wav, WER, similarity
	egs/synth/tts1/local/clone_demo.sh $(CURDIR)/demo

demo-train: install ## Train every network from nothing on a small offline corpus (CPU), then clone held-out voices
	cd egs/synth/tts1 && ./run.sh --config conf/demo.conf && ./local/demo.sh $(CURDIR)/demo-train/out.wav

.PHONY: train-duration
train-duration: install ## Train the duration model on RECIPE's dump/train (ARGS="data.train_dump=null data.train_dir=data/train": from audio)
	$(TRAIN) task=duration model=duration_$(SIZE) exp_dir=exp/duration data.train_dump=dump/train $(ARGS)
