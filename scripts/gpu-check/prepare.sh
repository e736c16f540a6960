#!/usr/bin/env bash
# Here, before a session's GPU check: builds .gpu-carry/ (git-ignored), what the lent GPU machine
# lacks for it. That machine has python3 with PyTorch, onnx and onnxruntime (training.gpu_check
# runs there as is) but no node and no Vulkan loader: this carries this machine's node binary,
# onnxruntime-node (whose linux-x64 library bundles the WebGPU provider, Dawn) with the compiled
# providers bench next to it, and the Vulkan/GL loader packages, which Dawn needs to reach the GPU.
# About 40 MB; the device tool carries at most 64 MiB with the working tree.
# Then: scripts/gpu-check/README.md.
set -euo pipefail
cd "$(dirname "$0")/../.."

rm -rf .gpu-carry
mkdir -p .gpu-carry
build="$(mktemp -d)"
trap 'rm -rf "$build"' EXIT

# Only the bench and what it imports (bench/support.ts), compiled with the project's settings.
npx tsc -p scripts/gpu-check/tsconfig.json --outDir "$build"

node_binary="$(readlink -f "$(command -v node)")"
tar -C "$(dirname "$node_binary")" -cJf .gpu-carry/node.tar.xz "$(basename "$node_binary")"
# onnxruntime-node ships every platform's library (288 MB); the device is linux-x64. Its other
# dependencies (adm-zip, global-agent) serve only its install script.
tar -cJf .gpu-carry/runtime.tar.xz \
  --exclude='node_modules/onnxruntime-node/bin/napi-v6/darwin' \
  --exclude='node_modules/onnxruntime-node/bin/napi-v6/win32' \
  --exclude='node_modules/onnxruntime-node/bin/napi-v6/linux/arm64' \
  -C "$build" bench -C "$PWD" node_modules/onnxruntime-node node_modules/onnxruntime-common

# The Vulkan loader and the GL dispatch libraries as amd64 packages, whatever this machine's
# architecture: the set the device tool's README names for Vulkan there.
lists="$(mktemp -d)"
mkdir -p "$lists/partial"
apt_options=(-oAPT::Architecture=amd64 -oAPT::Architectures=amd64 "-oDir::State::Lists=$lists")
apt-get "${apt_options[@]}" update >/dev/null
(cd .gpu-carry && apt-get "${apt_options[@]}" download libvulkan1 libegl1 libglvnd0 libopengl0 libgl1 libglx0 libgles2 >/dev/null)
rm -rf "$lists"

du -sh .gpu-carry/*
total="$(du -sb .gpu-carry | cut -f1)"
tree="$( (git ls-files -z; git ls-files -z --others --exclude-standard) | xargs -0 stat -c %s 2>/dev/null | awk '{s += $1} END {print s + 0}')"
echo "carry .gpu-carry: $((total / 1048576)) MiB; with the working tree ($((tree / 1048576)) MiB): $(((total + tree) / 1048576)) of 64 MiB"
if ((total + tree > 64 * 1048576)); then
  echo "too large for the device tool (64 MiB)" >&2
  exit 1
fi
