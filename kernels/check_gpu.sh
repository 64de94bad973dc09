#!/usr/bin/env bash
# One-command GPU check of kernels/ (needs an NVIDIA GPU, nvcc and PyTorch with CUDA; CuPy optional;
# no TensorRT, no edgevl install). Builds the kernel library for this GPU, checks every kernel
# against float64 references on NaN-poisoned outputs (padding, odd lengths, both layouts, both
# attention paths), times fused attention against torch SDPA (flash) and an unfused baseline, and
# writes benchmarks/results/gpu_kernels.{json,md}. Exit 0 only when every numerical check passes.
# Budget: under 8 minutes on one GPU (the Python part is capped at 7).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
BUILD=${EDGEVL_KERNELS_BUILD:-build/gpu-check}
mkdir -p "$BUILD"
command -v nvcc >/dev/null || { echo "check_gpu: nvcc not found on PATH" >&2; exit 2; }
CC=$("$PY" -c 'import torch; assert torch.cuda.is_available(), "no CUDA GPU visible to torch"; m, n = torch.cuda.get_device_capability(); print(f"{m}{n}")')
echo "check_gpu: building for sm_$CC with $(nvcc --version | tail -1)"
# sm_XX SASS, plus compute_XX PTX so a driver can still JIT it if the SASS target is too new for nvcc
nvcc -O3 -std=c++17 -shared -Xcompiler -fPIC -Ikernels/include \
  -gencode "arch=compute_$CC,code=[sm_$CC,compute_$CC]" -Xptxas -v \
  kernels/src/evk_kernels.cu -o "$BUILD/libedgevl_kernels.so" 2> "$BUILD/ptxas.log" \
  || { cat "$BUILD/ptxas.log" >&2; exit 2; }
timeout 420 "$PY" kernels/check_gpu.py --lib "$BUILD/libedgevl_kernels.so" --ptxas "$BUILD/ptxas.log" \
  --out benchmarks/results "$@"
