#!/usr/bin/env bash
# Here, before a session's GPU check: builds .gpu-carry/ (git-ignored), what the lent GPU machine
# lacks for it. That machine has python3 with PyTorch (it exports the full-size model itself)
# but no node: this carries this machine's node binary, onnxruntime-node (whose linux-x64
# library bundles the WebGPU provider, Dawn) with the compiled providers bench, and the Vulkan
# loader, which Dawn needs to reach the GPU. About 40 MB; the device tool carries at most 64 MiB
# with the working tree. Then: scripts/gpu-check/README.md.
set -euo pipefail
cd "$(dirname "$0")/../.."

npm run build >/dev/null
rm -rf .gpu-carry
mkdir -p .gpu-carry

node_binary="$(readlink -f "$(command -v node)")"
tar -C "$(dirname "$node_binary")" -cJf .gpu-carry/node.tar.xz "$(basename "$node_binary")"
# onnxruntime-node ships every platform's library (288 MB); the device is linux-x64.
tar -cJf .gpu-carry/runtime.tar.xz --exclude='node_modules/onnxruntime-node/bin/napi-v6/darwin' --exclude='node_modules/onnxruntime-node/bin/napi-v6/win32' \
  --exclude='node_modules/onnxruntime-node/bin/napi-v6/linux/arm64' node_modules/onnxruntime-node node_modules/onnxruntime-common dist/bench/providers.bench.js dist/bench/support.js

# The Vulkan loader as an amd64 package, whatever this machine's architecture.
lists="$(mktemp -d)"
mkdir -p "$lists/partial"
apt_options=(-oAPT::Architecture=amd64 -oAPT::Architectures=amd64 "-oDir::State::Lists=$lists")
apt-get "${apt_options[@]}" update >/dev/null
(cd .gpu-carry && apt-get "${apt_options[@]}" download libvulkan1 >/dev/null)
rm -rf "$lists"

du -sh .gpu-carry/*
echo "carry .gpu-carry; total $(du -sh .gpu-carry | cut -f1)"
