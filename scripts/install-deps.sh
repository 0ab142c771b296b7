#!/usr/bin/env bash
# Installs the Debian packages DitCache uses at run and test time, when they are missing:
#   libopenblas0-pthread   libopenblas.so.0 for --gemm openblas/auto (the managed GEMM needs nothing)
#   dataset-fashion-mnist  the Fashion-MNIST test set for the quality metrics and their tests
# Python and torch are NOT needed: they only regenerate fixtures and train the shipped model (tools/).
set -euo pipefail
need=()
[ -e /usr/lib/x86_64-linux-gnu/libopenblas.so.0 ] || ldconfig -p 2>/dev/null | grep -q libopenblas.so.0 || need+=(libopenblas0-pthread)
[ -e /usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz ] || need+=(dataset-fashion-mnist)
if [ ${#need[@]} -eq 0 ]; then
  exit 0
fi
sudo=""
if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null; then sudo="sudo"; else
    echo "install-deps: missing ${need[*]} and not root (no sudo); install them with: apt-get install -y ${need[*]}" >&2
    exit 1
  fi
fi
echo "install-deps: installing ${need[*]}" >&2
$sudo apt-get update -qq >&2
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${need[@]}" >&2
