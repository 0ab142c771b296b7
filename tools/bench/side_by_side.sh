#!/usr/bin/env bash
# DitCache and PyTorch 1.13 side by side (tools/bench/side_by_side.py), with --peers ort,torchsharp also ONNX Runtime
# and TorchSharp (bench/DitCache.Peers): Debian's PyTorch is /usr/bin/python3; OpenBLAS
# starts with two threads (PyTorch's best on an idle 2-core machine) and the script sets other counts per variant.
# Arguments pass through, e.g.
#   tools/bench/side_by_side.sh --rounds 11 --torch-blas-threads 2,1 --threads 1,2 --gemm managed
#   tools/bench/side_by_side.sh --parts forward,sample --peers ort,torchsharp --threads 1,2 --torch-blas-threads 2,1
set -euo pipefail
cd "$(dirname "$0")/../.."
export OPENBLAS_NUM_THREADS="${OPENBLAS_NUM_THREADS:-2}"
exec /usr/bin/python3 tools/bench/side_by_side.py "$@"
