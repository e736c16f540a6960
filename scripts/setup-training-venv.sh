#!/usr/bin/env bash
# Creates (or refreshes) .venv-training at the repository root with the trainer's pinned
# requirements. Idempotent: when the installed requirements already match the file's hash,
# it returns immediately without touching pip.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="${TRAINING_VENV:-$root/.venv-training}"
requirements="$root/training/requirements.txt"
stamp="$venv/.requirements.sha256"
python="${PYTHON:-python3}"

wanted="$(sha256sum "$requirements" | cut -d' ' -f1)"
if [[ -x "$venv/bin/python" && -f "$stamp" && "$(cat "$stamp")" == "$wanted" ]]; then
  echo "training venv up to date: $venv"
  exit 0
fi

if [[ ! -x "$venv/bin/python" ]]; then
  "$python" -m venv "$venv"
fi
# --retries 0: on machines whose only reachable index is a local mirror, pip would otherwise
# spend minutes backing off from the unreachable default index for every package.
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check --retries 0 -r "$requirements"
echo "$wanted" > "$stamp"
echo "training venv ready: $venv"
