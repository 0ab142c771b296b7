#!/usr/bin/env bash
# Runs the sharded job, waits for every index to complete, then the merge job (Kubernetes has no dependency
# between Jobs: the wait is the dependency). TIMEOUT bounds the wait (default 24h).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
kubectl apply -f "$here/pvc.yaml"
kubectl apply -f "$here/shards-job.yaml"
kubectl wait --for=condition=complete --timeout="${TIMEOUT:-24h}" job/ditcache-shards
kubectl apply -f "$here/merge-job.yaml"
kubectl wait --for=condition=complete --timeout=1h job/ditcache-merge
kubectl logs job/ditcache-merge
