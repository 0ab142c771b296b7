#!/usr/bin/env bash
# Runs every test of the solution (installs the Debian packages the tests use first), then the kernel and GEMM
# tests again with AVX-512 and with all hardware intrinsics switched off, so the AVX2 and scalar paths the
# runtime would pick on other CPUs are exercised too.
set -euo pipefail
cd "$(dirname "$0")"
scripts/install-deps.sh
dotnet test DitCache.slnx -nologo "$@"
DOTNET_EnableAVX512=0 dotnet test tests/DitCache.Tensors.Tests --no-build -nologo "$@"
DOTNET_EnableHWIntrinsic=0 dotnet test tests/DitCache.Tensors.Tests --no-build -nologo "$@"
