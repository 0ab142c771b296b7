#!/usr/bin/env bash
# Submits a sharded ditcache run to Slurm: an array of N shard tasks, then a merge job that starts only when all of
# them have succeeded (afterok on the array job).
#
#   deploy/slurm/submit.sh N OUT COMMAND [FLAGS...]
#   deploy/slurm/submit.sh 32 /shared/runs/foca3 evaluate --cache foca:n=3 --samples-per-class 5000 --threads 16
#
# Extra sbatch options (partition, account, time) go in SBATCH_OPTS, e.g. SBATCH_OPTS="--partition=cpu --time=12:00:00".
set -euo pipefail

if [[ $# -lt 3 ]]; then
    echo "usage: $0 N OUT COMMAND [FLAGS...]   (e.g. $0 32 /shared/runs/foca3 evaluate --threads 16)" >&2
    exit 2
fi

n=$1 out=$2
shift 2
if ! [[ $n =~ ^[1-9][0-9]*$ ]]; then
    echo "$0: N '$n' is not a positive whole number of shards; give e.g. 32" >&2
    exit 2
fi

here=$(cd "$(dirname "$0")" && pwd)
read -r -a opts <<< "${SBATCH_OPTS:-}"
array=$(sbatch --parsable "${opts[@]}" --array="0-$((n - 1))" --export="ALL,OUT=$out" "$here/ditcache-shard.sbatch" "$@")
array=${array%%;*}                                   # --parsable prints "jobid" or "jobid;cluster"
merge=$(sbatch --parsable "${opts[@]}" --dependency="afterok:$array" --export="ALL,OUT=$out" "$here/ditcache-merge.sbatch")
echo "submitted shards as job $array (array 0-$((n - 1))) and the merge as job ${merge%%;*} (after all shards succeed)"
