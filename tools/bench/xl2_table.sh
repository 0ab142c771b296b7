#!/usr/bin/env bash
# DiT-XL/2 256x256 or 512x512 on this CPU (issue 20 item 5): seconds per image, FLOPs ratio and fidelity to full compute of the
# accelerators side by side in one `ditcache bench` run, on random weights of the real shape (the published weights
# cannot be downloaded here; timing depends on shapes, not values). Resumable: rerunning with the same DIR skips the
# configurations already measured. Usage:
#   tools/bench/xl2_table.sh [DIR] [STEPS] [SAMPLER] [SIZE]      # defaults /tmp/xl2 50 ddim 256
# CACHES (environment) replaces the accelerator list, e.g. CACHES="foca:n=3 foca:n=5" (full compute is always run).
set -euo pipefail
cd "$(dirname "$0")/../.."
dir="${1:-/tmp/xl2}"; steps="${2:-50}"; sampler="${3:-ddim}"; size="${4:-256}"
caches="${CACHES:-foca:n=3 foca:n=5 taylorseer:n=4,o=4,warmup=2 fora:n=3}"
model="$dir/DiT-XL-2-$size.safetensors"
[ -f "$model" ] || /usr/bin/python3 tools/bench/make_random_dit.py --preset XL/2 --image-size "$size" --out "$model"
dotnet build src/DitCache.Cli -c Release -nologo -v q > /dev/null
flags=(--cache none)
for c in $caches; do flags+=(--cache "$c"); done
out="$dir/bench-$sampler$steps"; [ "$size" = 256 ] || out="$out-$size"
exec src/DitCache.Cli/bin/Release/net10.0/ditcache bench --model "$model" --classes 207 --samples 1 --repeats 1 \
  --steps "$steps" --sampler "$sampler" --cfg 4 --shadow-images 0 --threads 2 "${flags[@]}" --out "$out"
