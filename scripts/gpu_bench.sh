#!/usr/bin/env bash
# The planner speed bench (bench/inference_speed.py) on whatever device this machine has: CUDA when
# torch sees a GPU (ONNX Runtime then takes its CUDA or TensorRT provider where installed), else the
# CPU. Writes $OUT/inference_speed_<device>.json + .md ($OUT: results/ unless set, e.g. by the device
# tool). Extra arguments go to the bench, e.g. --episodes 2.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
OUT="${OUT:-$ROOT/results}"
cd "$ROOT"
PYTHON="${PYTHON:-python}"
DEVICE="$("$PYTHON" -c 'import torch; print("cuda" if torch.cuda.is_available() else "cpu")')"
"$PYTHON" -c 'import onnxruntime as ort, torch; print("device:", torch.cuda.get_device_name(0) if torch.cuda.is_available() else "cpu", "| ONNX Runtime providers:", ort.get_available_providers())'
mkdir -p "$OUT"
"$PYTHON" bench/inference_speed.py --device "$DEVICE" --out "$OUT/inference_speed_$DEVICE.json" "$@"
