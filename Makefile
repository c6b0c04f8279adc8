# zhouyi: `make install` once, then `make demo` (whole pipeline on a tiny CPU model) and `make test`.
VENV   ?= .venv
PY     := $(VENV)/bin/python
ZHOUYI := $(VENV)/bin/zhouyi
SPEC   ?= zhougong-lora
TINY   := models/tiny-qwen2
ASK    ?= 梦见蛇是什么意思？

SCRAPED ?= ../shared/data/zgjm

.PHONY: install demo data test test-fast lint validate register train chat export bench clean

install:
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install --upgrade pip
	$(PY) -m pip install -e '.[dev]'

$(TINY):
	$(ZHOUYI) tiny-model $(TINY)

## The tutorial's whole job on the tiny model: build it, register data, LoRA-train, export, chat once.
demo: $(TINY)
	$(ZHOUYI) train tiny-cpu
	$(ZHOUYI) export tiny-cpu --force
	$(ZHOUYI) chat tiny-cpu -m '$(ASK)'
	@echo; echo "demo done: model $(TINY), runs in runs/ (adapter in train/, merged weights in merged/)"

## Clean the scraped dream data into data/zhougong.json (+ _eval split), report in out/data-report.
data:
	$(ZHOUYI) data clean --spec $(SPEC) $(SCRAPED)/jingle1267_zgjm.jsonl $(SCRAPED)/leochan2017_zgjm.json \
	  $(SCRAPED)/maxsherry_jiemeng_classical.txt

test:
	$(PY) -m pytest -q

test-fast:
	$(PY) -m pytest -q -m 'not slow'

lint:
	$(VENV)/bin/ruff check zhouyi tests bench

validate:
	$(ZHOUYI) validate tiny-cpu $(SPEC)

register:
	$(ZHOUYI) register $(SPEC)

train:
	$(ZHOUYI) train $(SPEC)

chat:
	$(ZHOUYI) chat $(SPEC)

export:
	$(ZHOUYI) export $(SPEC)

## CLI speed, data-cleaning speed, tokenised-cache speed-up, and the training-speed ladder on this CPU.
bench: $(TINY)
	$(PY) bench/bench_cli.py
	$(PY) bench/bench_preprocess.py
	$(PY) bench/bench_data.py
	$(ZHOUYI) bench tiny-cpu --ladder --steps 8 --warmup 2

clean:
	rm -rf runs rendered build dist *.egg-info
