#!/usr/bin/env bash
# The GPU measurement behind README "Performance" (issue 6), for a GPU machine with no network.
# It installs the carried wheels (.whl/, see bench/README.md) when they are there, then runs the
# profile (where a step's time goes) and the ablation ladder on the tutorial's job with a randomly initialised Qwen2.5-1.5B (shipped config,
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
rm -rf /tmp/bench /tmp/profile
collect() {  # the report is rewritten after every rung: keep a copy in OUT_DIR even if this run is cut short
  cp /tmp/bench/bench.json /tmp/bench/bench.md "$out/" 2>/dev/null
  for log in /tmp/bench/*/train.log; do
    [ -f "$log" ] && { echo "=== $log"; grep -vE "it/s\]|s/it\]" "$log" | tail -25; }
  done > "$out/logs.txt" 2>&1
}
(while sleep 10; do collect; done) &
copier=$!
# first, where a step's time goes at the fastest settings measured so far (packing, no checkpointing, Liger)
liger=$("$py" -c "import importlib.util as u, torch; print(str(bool(u.find_spec('liger_kernel')) and torch.cuda.is_available()).lower())")
timeout "${PROFILE_TIMEOUT:-150}" "$py" -m zhouyi bench "$spec" --random-init --steps 8 --warmup 4 --profile 3 \
  --cutoff 1024 --tokenizer models/tiny-qwen2 --set train.packing=true --set train.gradient_checkpointing=false \
  --set train.enable_liger_kernel="$liger" -o /tmp/profile 2>&1 | tee "$out/profile.txt"
cp /tmp/profile/bench.json "$out/profile.json" 2>/dev/null; cp /tmp/profile/bench.md "$out/profile.md" 2>/dev/null
timeout "${BENCH_TIMEOUT:-420}" "$py" -m zhouyi bench "$spec" --random-init --ladder --steps "$steps" \
  --warmup 4 --cutoff 1024 --tokenizer models/tiny-qwen2 -o /tmp/bench 2>&1 | tee "$out/bench.txt"
kill "$copier" 2>/dev/null
collect
