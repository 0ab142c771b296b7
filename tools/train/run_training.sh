#!/usr/bin/env bash
# Background training of the shipped model on this CPU (one torch thread, two OpenBLAS threads: the fastest
# setting measured here; two levels of threads oversubscribe the 2 cores).
set -euo pipefail
cd "$(dirname "$0")/../.."
export OPENBLAS_NUM_THREADS=2 OMP_NUM_THREADS=1 OMP_WAIT_POLICY=PASSIVE
exec nice -n 5 /usr/bin/python3 tools/train/train_dit.py --out tools/train/out/dit --steps "${STEPS:-20000}" --threads 1 "$@"
