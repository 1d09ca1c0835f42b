#!/bin/sh
# sealing.sh: what sealing the local swap file costs a major fault
# (issue 21: at most 10% more). bench/fault_latency runs in pairs, one
# pass with UPAGER_ENCRYPT=0 and one with UPAGER_ENCRYPT=1, the order
# swapped from one pair to the next, on the SIGSEGV source. The disk's
# latency drifts by a third within minutes, so each pass's fault is taken
# as fault_latency prints it, over the floor (bare fault + pread) read
# around that very pass; each pair's ratio is sealed over plain. Prints
# every pair and the median of each kind.
#
#   bench/sealing.sh BUILD_DIR [PAIRS [FAULT_LATENCY_ARGS...]]
# PAIRS defaults to 7, the fault_latency arguments to "1024 8".
set -eu
build=$1
pairs=${2:-7}
shift $(($# < 2 ? $# : 2))
[ $# -gt 0 ] || set -- 1024 8
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# The SIGSEGV column's us/fault and its ratio to the floor, for a kind.
column() { awk -v kind="$1" 'index($0, kind) == 1 { sub(/x$/, "", $6); print $5, $6 }' "$2"; }

one_pass() { # ENCRYPT FAULT_LATENCY_ARGS...
  encrypt=$1
  shift
  UPAGER_ENCRYPT=$encrypt "$build/bench/fault_latency" "$@" > "$work/out" 2>/dev/null ||
    { echo "sealing: fault_latency failed (UPAGER_ENCRYPT=$encrypt)" >&2; exit 1; }
  for kind in clean dirty; do column "major, $kind victim" "$work/out" >> "$work/$kind.$encrypt"; done
}

i=1
while [ "$i" -le "$pairs" ]; do
  if [ $((i % 2)) = 1 ]; then one_pass 0 "$@"; one_pass 1 "$@"; else one_pass 1 "$@"; one_pass 0 "$@"; fi
  i=$((i + 1))
done

median() { sort -n | awk '{ v[NR] = $1 } END { printf "%.3f", NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }

echo "major fault from the local swap file, us a fault, SIGSEGV source, plain and sealed (UPAGER_ENCRYPT=1):"
echo "$pairs pairs of bench/fault_latency $*, the order swapped each pair"
for kind in clean dirty; do
  paste "$work/$kind.0" "$work/$kind.1" > "$work/pairs"
  printf '%s victim, us (over the floor): plain  %s\n' "$kind" \
    "$(awk '{ printf "%s (%sx) ", $1, $2 }' "$work/pairs")"
  printf '%s victim, us (over the floor): sealed %s\n' "$kind" \
    "$(awk '{ printf "%s (%sx) ", $3, $4 }' "$work/pairs")"
  awk '{ printf "%.3f\n", $4 / $2 }' "$work/pairs" > "$work/ratios"
  printf '%s victim: sealed / plain, pair by pair: %s; median %s (target <= 1.10)\n' "$kind" \
    "$(tr '\n' ' ' < "$work/ratios")" "$(median < "$work/ratios")"
done
