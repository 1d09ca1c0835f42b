#!/bin/sh
# run_overhead.sh: what `upager run` costs a program whose heap fits in the
# budget: each program runs normally and under upager (budget twice its
# measured heap) in pairs, back to back, the order swapped from one pair to
# the next, and the median of the pairs' ratios gives the slowdown.
# sort runs on a 5 MB file, where the runtime's fixed start-up costs show,
# and on a 54 MB one, where the per-page costs do.
# Not a test: timings on a shared VM are noisy; rerun and compare. This
# VM's speed drifts by a fifth within minutes, which a pair shares and the
# median of separate runs does not. The host's noise only ever adds time,
# so the ratio of the fastest runs ("best") is printed too: on a quiet
# machine the figures agree, and where they part the noise is larger than
# the difference.
#
#   bench/run_overhead.sh UPAGER [RUNS [NAME...]]
# RUNS defaults to 7; NAMEs ("sort 54M -p1") pick programs, all by default.
set -eu
upager=$1
runs=${2:-7}
shift $(($# < 2 ? $# : 2))
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
export LC_ALL=C

seq 1 200000 | awk '{ printf "%d %x line-%d\n", ($1 * 7919) % 1000003,
                      ($1 * 2654435761) % 4294967296, $1 }' > "$work/text"
seq 1 2000000 | awk '{ printf "%d %x line-%d\n", ($1 * 7919) % 1000003,
                       ($1 * 2654435761) % 4294967296, $1 }' > "$work/large"
cat > "$work/db.sql" <<'SQL'
CREATE TABLE t(id INTEGER PRIMARY KEY, k INTEGER, v TEXT);
WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 1000000)
INSERT INTO t SELECT x, (x * 7919) % 1000003, printf('row-%08d', x) FROM c;
CREATE INDEX tk ON t(k);
SELECT count(*), sum(k) FROM t WHERE k BETWEEN 1000 AND 500000;
SQL

picked=$(for name in "$@"; do printf '%s\n' "$name"; done)

now() { date +%s.%N; }
median() { sort -n | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }
fastest() { sort -n | head -n 1; }
timed() { t0=$(now); "$@" > /dev/null; t1=$(now); echo "$t1 $t0" | awk '{ print $1 - $2 }'; }

chosen() { # name: picked on the command line, or nothing was
  [ -z "$picked" ] && return 0
  printf '%s\n' "$picked" | grep -qxF "$1"
}

measure() { # name command...
  name=$1; shift
  chosen "$name" || return 0
  heap=$(UPAGER_READAHEAD=4K "$upager" run --budget 4G --stats -- "$@" 2>&1 >/dev/null |
         awk '$1 == "pages_resident_peak" { print $2 * 4096 }')
  budget=$((heap * 2 + 16777216))
  : > "$work/plain"; : > "$work/paged"; : > "$work/pairs"
  i=0
  while [ $i -lt "$runs" ]; do
    if [ $((i % 2)) -eq 0 ]; then
      p=$(timed "$@"); q=$(timed "$upager" run --budget "$budget" -- "$@")
    else
      q=$(timed "$upager" run --budget "$budget" -- "$@"); p=$(timed "$@")
    fi
    echo "$p" >> "$work/plain"; echo "$q" >> "$work/paged"
    echo "$q $p" | awk '{ print $1 / $2 }' >> "$work/pairs"
    i=$((i + 1))
  done
  plain=$(median < "$work/plain"); paged=$(median < "$work/paged"); pairs=$(median < "$work/pairs")
  plain_best=$(fastest < "$work/plain"); paged_best=$(fastest < "$work/paged")
  awk -v n="$name" -v h="$heap" -v p="$plain" -v q="$paged" -v r="$pairs" -v pb="$plain_best" -v qb="$paged_best" 'BEGIN {
    printf "%-13s heap %6.1f MiB  normal %6.3f s  upager %6.3f s  pairs %.3f  best %6.3f / %6.3f s  ratio %.3f\n",
           n, h / 1048576, p, q, r, pb, qb, qb / pb }'
}

echo "$runs pairs each, budget twice the heap; medians, the median of the pairs' ratios, and the fastest runs"
measure "xz -9" xz -9 -c "$work/text"
measure "xz -9 -T2" xz -9 -T2 --block-size=1MiB -c "$work/text"
measure "sort" sort "$work/text"
measure "sort -p2" sort --parallel=2 "$work/text"
measure "sort 54M" sort "$work/large"
measure "sort 54M -p1" sort --parallel=1 "$work/large"
measure "sqlite3" sqlite3 :memory: ".read $work/db.sql"
