#!/usr/bin/env bash
# The main job: builds the CLI (Release) and runs it with your arguments, e.g.
#   ./run.sh sample --classes 0,1,2,3 --cache foca:n=5 --out samples.png
set -euo pipefail
cd "$(dirname "$0")"
scripts/install-deps.sh
log="$(mktemp)"
if ! dotnet build src/DitCache.Cli/DitCache.Cli.csproj -c Release -nologo > "$log" 2>&1; then
  cat "$log" >&2
  rm -f "$log"
  echo "run.sh: building the CLI failed (output above)" >&2
  exit 1
fi
rm -f "$log"
exec src/DitCache.Cli/bin/Release/net10.0/ditcache "$@"
