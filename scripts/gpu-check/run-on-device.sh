#!/usr/bin/env bash
# The GPU check, on the lent GPU machine, in the repository root, with .gpu-carry carried
# (prepare.sh): training throughput and peak memory in bf16, PyTorch inference ms/image, GPU
# outputs against CPU outputs (training.gpu_check), and onnxruntime-node's webgpu, cuda and cpu
# providers against the same CPU reference (bench/providers.bench.ts). Every step runs under a
# time limit and within one budget for the whole script; a step that fails or runs out of time is
# recorded as such and the next one still runs. Writes gpu-check.json, gpu-check.md and
# gpu-check.log to $OUT. See scripts/gpu-check/README.md.
#
# Settings (environment): PYTHON (python3), DEVICE (cuda), PRECISION (bf16), SIZE (full),
# BATCHES (1,8,32), RUNS (20), NODE_RUNS (10), TRAIN_ITERATIONS (30), PROVIDERS (webgpu,cuda,cpu),
# THREADS (unset: all cores), BUDGET_S (500: keep it under the device call's timeout), WORK
# (/tmp/gpu-check-work: the ONNX file, the reference, each step's result).
set -uo pipefail
cd "$(dirname "$0")/../.."

out="${OUT:-/tmp/gpu-check-out}"
work="${WORK:-/tmp/gpu-check-work}"
python="${PYTHON:-python3}"
size="${SIZE:-full}"
batches="${BATCHES:-1,8,32}"
providers="${PROVIDERS:-webgpu,cuda,cpu}"
budget="${BUDGET_S:-500}"
reserve=40 # seconds kept for the report
mkdir -p "$out" "$work"
rm -f "$work"/part-*.json "$work"/node-*.json "$work/steps.tsv" "$work/reference.json"
exec > >(tee "$out/gpu-check.log") 2>&1
tee_pid=$!
export PYTHONUNBUFFERED=1

skip() {
  printf '%s\tskip\t\t\t%s\n' "$1" "$2" >>"$work/steps.tsv"
  echo "== $1: skipped: $2"
}

# step NAME LIMIT COMMAND...: COMMAND under `timeout` (LIMIT seconds, or what the budget has left),
# recorded in steps.tsv (name, exit status, seconds, limit) for the report.
step() {
  local name=$1 limit=$2
  shift 2
  local left=$((budget - reserve - SECONDS))
  if ((left < 15)); then
    skip "$name" "no time left in the script's ${budget} s budget"
    return 1
  fi
  ((limit > left)) && limit=$left
  echo "== $name (limit ${limit} s, ${SECONDS} s into the run)"
  local started=$SECONDS
  timeout -k 10 "$limit" "$@"
  local status=$?
  printf '%s\t%s\t%s\t%s\t\n' "$name" "$status" "$((SECONDS - started))" "$limit" >>"$work/steps.tsv"
  echo "== $name: exit $status after $((SECONDS - started)) s"
  return "$status"
}

echo "== machine"
nvidia-smi -L 2>/dev/null || echo "no nvidia-smi"
nproc
"$python" --version

# Dawn (onnxruntime-node's WebGPU) needs the Vulkan loader, which the image lacks; the NVIDIA
# driver brings its own ICD file. Only where an NVIDIA driver is: never into a development machine's /.
if command -v nvidia-smi >/dev/null && ! ldconfig -p | grep -q 'libvulkan\.so\.1'; then
  for package in .gpu-carry/*.deb; do [ -f "$package" ] && dpkg -x "$package" /; done
  ldconfig
fi
if [ -z "${VK_DRIVER_FILES:-}" ] && [ -f /usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json ]; then
  export VK_DRIVER_FILES=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json
fi
ldconfig -p | grep libvulkan || echo "no libvulkan"
echo "VK_DRIVER_FILES=${VK_DRIVER_FILES:-}"

# node and the compiled bench: from .gpu-carry on the device, else this checkout's build (tests here).
node_binary="" bench="" node_missing=""
if [ -f .gpu-carry/node.tar.xz ] && [ -f .gpu-carry/runtime.tar.xz ]; then
  rm -rf "$work/node-bin" "$work/node-app"
  mkdir -p "$work/node-bin" "$work/node-app"
  if tar -C "$work/node-bin" -xJf .gpu-carry/node.tar.xz && tar -C "$work/node-app" -xJf .gpu-carry/runtime.tar.xz; then
    node_binary="$(find "$work/node-bin" -maxdepth 1 -type f | head -1)"
    bench="$work/node-app/bench/providers.bench.js"
  else
    node_missing="unpacking .gpu-carry failed (see the log)"
  fi
elif command -v node >/dev/null && [ -f dist/bench/providers.bench.js ]; then
  node_binary="$(command -v node)" bench=dist/bench/providers.bench.js
else
  node_missing="no node here: .gpu-carry is missing (run scripts/gpu-check/prepare.sh before the device call)"
fi
[ -n "$node_binary" ] && "$node_binary" --version

python_args=(--device "${DEVICE:-cuda}" --precision "${PRECISION:-bf16}" --size "$size" --batches "$batches"
  --runs "${RUNS:-20}" --train-iterations "${TRAIN_ITERATIONS:-30}" --out "$out" --work "$work")
[ -n "${THREADS:-}" ] && python_args+=(--threads "$THREADS")

# First the export and the CPU reference, which the node side needs; then training and inference.
step compare 150 "$python" -m training.gpu_check "${python_args[@]}" --parts compare
step train 120 "$python" -m training.gpu_check "${python_args[@]}" --parts train
step infer 90 "$python" -m training.gpu_check "${python_args[@]}" --parts infer

model="$work/ast-mfr.$size.onnx"
IFS=, read -r -a provider_list <<<"$providers"
for provider in "${provider_list[@]}"; do
  if [ -n "$node_missing" ]; then
    skip "node-$provider" "$node_missing"
  elif [ ! -f "$work/reference.json" ] || [ ! -f "$model" ]; then
    skip "node-$provider" "no model or CPU reference: the compare step did not finish"
  else
    limit=120
    [ "$provider" = cuda ] && limit=30 # skipped at once without its provider files; else one session's start
    step "node-$provider" "$limit" "$node_binary" "$bench" --model "$model" --providers "$provider" \
      --batches "$batches" --runs "${NODE_RUNS:-10}" --seconds-per-batch 25 \
      --reference "$work/reference.json" --json "$work/node-$provider.json"
  fi
done

echo "== report (${SECONDS} s into the run)"
timeout -k 5 "$reserve" "$python" -m training.gpu_check --report-only --size "$size" --batches "$batches" \
  --node-providers "$providers" --out "$out" --work "$work"
status=$?
echo "== done in ${SECONDS} s; report exit $status; in $out: $(ls "$out" | tr '\n' ' ')"
exec 1>&- 2>&-
wait "$tee_pid"
exit "$status"
