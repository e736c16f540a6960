#!/usr/bin/env bash
# On the lent GPU machine, in the repository root, with .gpu-carry carried (prepare.sh):
# onnxruntime-node's webgpu provider (through Vulkan) against its cpu provider, full-size
# AST-MFR, batch 1 and 16. Writes providers.json and gpu-check.log to $OUT.
# Settings: PYTHON (python3), BATCHES (1,16), RUNS (10), PROVIDERS (webgpu,cpu).
set -uo pipefail
out="${OUT:-/tmp/gpu-check}"
mkdir -p "$out"
exec > >(tee "$out/gpu-check.log") 2>&1

# The Vulkan loader; the NVIDIA driver brings its own ICD file.
for package in .gpu-carry/*.deb; do dpkg -x "$package" /; done
ldconfig
if [ -z "${VK_DRIVER_FILES:-}" ] && [ -f /usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json ]; then
  export VK_DRIVER_FILES=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json
fi
mkdir -p /tmp/gpu-check-node
tar -C /tmp/gpu-check-node -xJf .gpu-carry/node.tar.xz
tar -xJf .gpu-carry/runtime.tar.xz
node_binary="$(ls /tmp/gpu-check-node/*)"

echo "== machine"
nvidia-smi -L || true
ldconfig -p | grep libvulkan || echo "no libvulkan"
echo "VK_DRIVER_FILES=${VK_DRIVER_FILES:-}"
"$node_binary" --version

model=models/full/ast-mfr.full.onnx
if [ ! -f "$model" ]; then
  echo "== exporting the full-size model (random weights)"
  "${PYTHON:-python3}" bench/export_full_model.py --threads "$(nproc)" --out "$model" || exit 1
fi

echo "== providers"
"$node_binary" dist/bench/providers.bench.js --model "$model" --providers "${PROVIDERS:-webgpu,cpu}" \
  --batches "${BATCHES:-1,16}" --runs "${RUNS:-10}" --json "$out/providers.json"
