#!/bin/bash
# with_servers.sh MODE COMMAND [ARGS...]: starts the Redis servers a test
# needs on free loopback ports, runs COMMAND with their addresses in the
# environment, and stops them by the PIDs it started, whatever happens
# (a trap on exit, interrupt and termination). Its status is COMMAND's.
#   single   one server: REDIS_SINGLE=127.0.0.1:port, and REDIS_DOWN, a
#            port nobody listens on
#   cluster  three masters with a replica each, made with redis-cli
#            --cluster create: REDIS_CLUSTER=127.0.0.1:port,... (the
#            masters), REDIS_PIDS=file of "port pid" lines
set -u
mode=$1
shift
dir=$(mktemp -d /tmp/upager-redis.XXXXXX)
pids=""
cleanup() {
  for p in $pids; do kill "$p" 2>/dev/null; done
  for _ in $(seq 50); do
    alive=0
    for p in $pids; do kill -0 "$p" 2>/dev/null && alive=1; done
    [ $alive = 0 ] && break
    sleep 0.1
  done
  for p in $pids; do kill -9 "$p" 2>/dev/null; done
  wait 2>/dev/null
  rm -rf "$dir"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

taken() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# n consecutive ports free, with their cluster bus ports (+10000), all
# below the kernel's ephemeral range (32768 up), which clients' sockets
# take without listening: a connect finds them free, a bind does not.
pick_ports() {
  local n=$1 base i ok
  for _ in $(seq 50); do
    base=$((20000 + RANDOM % 2700)) ok=1
    for i in $(seq 0 $((n - 1))); do
      if taken $((base + i)) || taken $((base + i + 10000)); then ok=0; break; fi
    done
    [ $ok = 1 ] && { echo $base; return 0; }
  done
  echo "with_servers.sh: no free ports found" >&2
  return 1
}

start_server() {
  local port=$1
  shift
  redis-server --port "$port" --bind 127.0.0.1 --save '' --appendonly no --dir "$dir" \
    --logfile "$dir/$port.log" --daemonize no "$@" &
  pids="$pids $!"
  echo "$port $!" >>"$dir/pids"
  for _ in $(seq 200); do
    redis-cli -p "$port" ping >/dev/null 2>&1 && return 0
    sleep 0.05
  done
  echo "with_servers.sh: redis-server on port $port did not start:" >&2
  tail -5 "$dir/$port.log" >&2
  return 1
}

# Every node sees the cluster ok and knows all three replicas (the slot
# map a client reads lists a master's replicas only once the node it asks
# has heard of them: a store that read a master without its replica would
# not wait for the replica's copy), and every replica has finished its
# first sync (a replica that never did cannot be promoted when its master
# dies).
cluster_ready() {
  local port replicas=0
  for port in "$@"; do
    redis-cli -p "$port" cluster info 2>/dev/null | grep -q '^cluster_state:ok' || return 1
    [ "$(redis-cli -p "$port" cluster nodes | awk '$3 ~ /slave/' | wc -l)" = 3 ] || return 1
    if redis-cli -p "$port" info replication | grep -q '^role:slave'; then
      redis-cli -p "$port" info replication | grep -q '^master_link_status:up' || return 1
      replicas=$((replicas + 1))
    fi
  done
  [ $replicas = 3 ]
}

case $mode in
single)
  base=$(pick_ports 2) || exit 1
  start_server "$base" || exit 1
  export REDIS_SINGLE="127.0.0.1:$base" REDIS_DOWN="127.0.0.1:$((base + 1))"
  ;;
cluster)
  base=$(pick_ports 6) || exit 1
  nodes=""
  ports=""
  for i in 0 1 2 3 4 5; do
    port=$((base + i))
    start_server "$port" --cluster-enabled yes --cluster-config-file "$dir/nodes-$port.conf" \
      --cluster-node-timeout 1000 || exit 1
    nodes="$nodes 127.0.0.1:$port" ports="$ports $port"
  done
  # shellcheck disable=SC2086
  redis-cli --cluster create $nodes --cluster-replicas 1 --cluster-yes >"$dir/create.log" 2>&1 ||
    { cat "$dir/create.log" >&2; exit 1; }
  ready=0
  for _ in $(seq 300); do
    # shellcheck disable=SC2086
    cluster_ready $ports && { ready=1; break; }
    sleep 0.1
  done
  [ $ready = 1 ] || { echo "with_servers.sh: the cluster never became ready" >&2; exit 1; }
  export REDIS_CLUSTER="127.0.0.1:$base,127.0.0.1:$((base + 1)),127.0.0.1:$((base + 2))"
  export REDIS_PIDS="$dir/pids"
  ;;
*)
  echo "usage: with_servers.sh single|cluster COMMAND [ARGS...]" >&2
  exit 2
  ;;
esac
"$@"
