#!/usr/bin/env bash
# The main job: builds the CLI (Release) and runs it with your arguments, e.g.
#   ./run.sh sample --classes 0,1,2,3 --cache none --out samples.png
set -euo pipefail
cd "$(dirname "$0")"
scripts/install-deps.sh
dotnet build src/DitCache.Cli/DitCache.Cli.csproj -c Release -nologo -v quiet -clp:ErrorsOnly >&2
exec src/DitCache.Cli/bin/Release/net10.0/ditcache "$@"
