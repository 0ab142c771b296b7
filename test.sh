#!/usr/bin/env bash
# Runs every test of the solution (installs the Debian packages the tests use first).
set -euo pipefail
cd "$(dirname "$0")"
scripts/install-deps.sh
dotnet test DitCache.slnx -nologo "$@"
