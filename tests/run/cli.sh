#!/bin/sh
# cli.sh: `upager run`'s contract: the program's exit status, death by the
# program's signal, 125/126/127 for upager's own failures, and a --stats
# report even from a program that closes stderr at exit (coreutils do);
# and --help, which lists every UPAGER_* variable with its default.
#   cli.sh UPAGER
set -u
upager=$1
fail() { echo "cli.sh: $*" >&2; exit 1; }
expect_status() { # expected command...
  want=$1; shift
  "$@" > /dev/null 2>&1
  got=$?
  [ "$got" -eq "$want" ] || fail "'$*' exited $got, expected $want"
}
expect_status 7 "$upager" run -- sh -c 'exit 7'
expect_status 143 "$upager" run --budget 2M -- sh -c 'kill -TERM $$'
expect_status 134 "$upager" run -- sh -c 'kill -ABRT $$'
expect_status 125 "$upager" run --budget 12Q -- true
expect_status 125 "$upager" run --policy lru -- true
expect_status 125 "$upager" run --budget
expect_status 127 "$upager" run -- /nonexistent/program
expect_status 0 "$upager" run --budget=8M --page-size=8K --policy=fifo -- true
report=$(seq 1 50000 | "$upager" run --budget 1M --stats -- sort -n 2>&1 > /dev/null)
echo "$report" | grep -q "^upager stats: policy clock" || fail "no stats report from sort"
out=$(LD_PRELOAD= "$upager" run -- sh -c 'echo "$LD_PRELOAD $UPAGER_BUDGET"' )
case $out in *libupager_preload.so*) ;; *) fail "LD_PRELOAD not set: $out" ;; esac
trace=$(mktemp)
seq 1 50000 | "$upager" run --budget 1M --trace "$trace" -- sort -n > /dev/null
[ "$(head -c 4 "$trace")" = "UPT1" ] || fail "no trace header written"
[ "$(wc -c < "$trace")" -gt 4096 ] || fail "the trace holds no faults"
# GNU grep installs its own SIGSEGV handler (gnulib's c-stack) once running.
seq 1 200000 > "$trace"
n=$("$upager" run --budget 1M -- grep -c 7 "$trace") || fail "grep failed under upager run"
[ "$n" = "$(grep -c 7 "$trace")" ] || fail "grep counted $n"
rm -f "$trace"
help=$("$upager" --help) || fail "--help failed"
for var in BUDGET PAGE_SIZE SWAP_DIR POLICY STATS MAX_MAPS TRACE READAHEAD DIRECT_IO HEAP_SIZE; do
  echo "$help" | grep -q "UPAGER_$var" || fail "--help does not name UPAGER_$var"
done
echo "$help" | grep -q "UPAGER_BUDGET *64M" || fail "--help does not give the budget's default"
expect_status 0 "$upager" --version
expect_status 2 "$upager" no-such-command
echo "cli.sh: all statuses as documented"
