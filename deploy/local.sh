#!/usr/bin/env bash
# Runs one sharded ditcache run as N local processes, then merges it: what a Kubernetes Indexed Job or a Slurm
# array does across machines (deploy/README.md), on one machine.
#
#   deploy/local.sh N OUT COMMAND [FLAGS...]
#   deploy/local.sh 4 runs/foca3 evaluate --cache foca:n=3 --samples-per-class 100 --threads 1
#
# Shard k of N runs `ditcache COMMAND FLAGS --shard k/N --out-dir OUT/shards` (log: OUT/logs/shard-k.log); once all
# have finished, `ditcache merge OUT/shards --out OUT/merged`. Rerun the same line to resume after a failure or a
# kill: finished images are kept. DITCACHE names the program (default: ditcache on PATH; e.g.
# DITCACHE="dotnet src/DitCache.Cli/bin/Release/net10.0/ditcache.dll").
set -euo pipefail

if [[ $# -lt 3 ]]; then
    echo "usage: $0 N OUT COMMAND [FLAGS...]   (COMMAND: sample or evaluate; e.g. $0 4 runs/a evaluate --threads 1)" >&2
    exit 2
fi

n=$1 out=$2
shift 2
if ! [[ $n =~ ^[1-9][0-9]*$ ]]; then
    echo "$0: N '$n' is not a positive whole number of shards; give e.g. 4" >&2
    exit 2
fi

read -r -a ditcache <<< "${DITCACHE:-ditcache}"
mkdir -p "$out/logs"
pids=()
for ((k = 0; k < n; k++)); do
    "${ditcache[@]}" "$@" --quiet --shard "$k/$n" --out-dir "$out/shards" > "$out/logs/shard-$k.log" 2>&1 &
    pids+=($!)
done

failed=0
for ((k = 0; k < n; k++)); do
    if ! wait "${pids[$k]}"; then
        echo "$0: shard $k/$n failed: $(tail -n 1 "$out/logs/shard-$k.log") (log: $out/logs/shard-$k.log); rerun the same command to resume" >&2
        failed=1
    fi
done

if [[ $failed -ne 0 ]]; then
    exit 1
fi

"${ditcache[@]}" merge "$out/shards" --out "$out/merged"
