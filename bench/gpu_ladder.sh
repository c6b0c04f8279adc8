#!/usr/bin/env bash
# The GPU measurement behind README "Performance" (issue 6), for a GPU machine with no network.
# It installs the carried wheels (.whl/, see bench/README.md) when they are there, then runs the
# ablation ladder on the tutorial's job with a randomly initialised Qwen2.5-1.5B (shipped config,
# no weights) and the tiny tokenizer, and copies the reports into OUT_DIR.
#   bash bench/gpu_ladder.sh OUT_DIR [STEPS]
# Proof on CPU with the tiny model:  PY=.venv/bin/python SPEC=tiny-cpu bash bench/gpu_ladder.sh out/cpu-proof 5
set -uo pipefail
out=${1:?usage: gpu_ladder.sh OUT_DIR [STEPS]}
steps=${2:-20}
py=${PY:-python3}
spec=${SPEC:-zhougong-lora}
mkdir -p "$out"
if compgen -G ".whl/*.whl" >/dev/null && [ -z "${NO_INSTALL:-}" ]; then
  "$py" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl \
    || exit 1
  export PYTHONPATH=/tmp/site:$PWD
fi
export PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1 TOKENIZERS_PARALLELISM=false
{
  date -u
  nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.max.sm --format=csv || echo "no GPU"
  "$py" -c "import sys, torch, transformers, llamafactory, peft, trl, datasets
print('python', sys.version.split()[0], 'torch', torch.__version__, 'cuda', torch.version.cuda)
print('transformers', transformers.__version__, 'llamafactory', llamafactory.__version__, 'peft', peft.__version__,
      'trl', trl.__version__, 'datasets', datasets.__version__)"
} 2>&1 | tee "$out/env.txt"
rm -rf /tmp/bench
collect() {  # the report is rewritten after every rung: keep a copy in OUT_DIR even if this run is cut short
  cp /tmp/bench/bench.json /tmp/bench/bench.md "$out/" 2>/dev/null
  for log in /tmp/bench/*/train.log; do
    [ -f "$log" ] && { echo "=== $log"; grep -vE "it/s\]|s/it\]" "$log" | tail -25; }
  done > "$out/logs.txt" 2>&1
}
(while sleep 10; do collect; done) &
copier=$!
timeout "${BENCH_TIMEOUT:-420}" "$py" -m zhouyi bench "$spec" --random-init --ladder --steps "$steps" \
  --warmup 4 --cutoff 1024 --tokenizer models/tiny-qwen2 -o /tmp/bench 2>&1 | tee "$out/bench.txt"
kill "$copier" 2>/dev/null
collect
