#!/bin/bash
# redis_failover.sh BUILD_DIR [RUNS]: the SIGKILL test outside ctest, RUNS
# times (20 by default), each on a fresh cluster (tests/redis/with_servers.sh):
# a master killed while four threads page through the store. Reports the
# pages lost over all runs (target: zero) and the runs that failed.
set -u
build=${1:?usage: redis_failover.sh BUILD_DIR [RUNS]}
runs=${2:-20}
here=$(cd "$(dirname "$0")/.." && pwd)
lost=0 failed=0
for i in $(seq "$runs"); do
  out=$("$here/tests/redis/with_servers.sh" cluster "$build/tests/test_redis" --jobs 1 \
    --filter 'redis_cluster/a_master_killed*' 2>&1)
  n=$(echo "$out" | sed -n 's/^pages lost: \([0-9]*\) .*/\1/p')
  if ! echo "$out" | grep -q 'Passing: 1'; then
    failed=$((failed + 1))
    echo "run $i failed:" >&2
    echo "$out" | grep -v Killed | tail -5 >&2
  fi
  lost=$((lost + ${n:-0}))
  echo "run $i: pages lost ${n:-unknown}"
done
echo "failover runs: $runs, failed: $failed, pages lost in all: $lost"
