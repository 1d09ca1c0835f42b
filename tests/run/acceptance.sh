#!/bin/sh
# acceptance.sh: a real program under `upager run` with a budget at least 8
# times below its heap, checked byte for byte against a normal run.
#
#   acceptance.sh UPAGER CASE [WORKDIR]
#   CASE: xz, xz-mt, sort, sort-mt, sqlite, stress (stress needs
#         ALLOC_STRESS=path/to/alloc_stress)
#   LOCALE: the locale the programs run in (C by default). Under a UTF-8
#         locale sort compares with strcoll and takes a change of errno
#         for a failed comparison, which a fault must never make.
#
# The heap is measured, not assumed: the program first runs under upager
# with a budget nothing is evicted under, and readahead off (so that no
# fresh page is mapped before the program touches it), and the runtime's
# own pages_resident_peak is its peak heap. The budget is an eighth of that.
# The paged run must then produce the same bytes, must have paged (major
# faults) and must never have held more than the budget.
set -eu

upager=$1
case_name=$2
work=${3:-$(mktemp -d)}
mkdir -p "$work"
export LC_ALL="${LOCALE:-C}"
page=4096

# Deterministic text: numbers, hex and words, not sorted.
make_text() { # lines
  seq 1 "$1" | awk '{ printf "%d %x line-%d %s\n", ($1 * 7919) % 1000003,
                      ($1 * 2654435761) % 4294967296, $1, ($1 % 7 == 0 ? "seven" : "other") }'
}

case $case_name in
  xz)      make_text 3000 > "$work/in"; set -- xz -9 -c "$work/in" ;;
  xz-mt)   make_text 40000 > "$work/in"; set -- xz -9 -T2 --block-size=256KiB -c "$work/in" ;;
  sort)    make_text 120000 > "$work/in"; set -- sort "$work/in" ;;
  sort-mt) make_text 120000 > "$work/in"; set -- sort --parallel=2 -S 64M "$work/in" ;;
  sqlite)
    cat > "$work/in" <<'EOF'
CREATE TABLE t(id INTEGER PRIMARY KEY, k INTEGER, v TEXT);
WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 1000000)
INSERT INTO t SELECT x, (x * 7919) % 1000003, printf('row-%08d', x) FROM c;
SELECT count(*), sum(k), min(v), max(v) FROM t;
SELECT k % 10 AS bucket, count(*), sum(id) FROM t GROUP BY bucket ORDER BY bucket;
SELECT id, k, v FROM t WHERE id % 100000 = 0;
EOF
    set -- sqlite3 :memory: ".read $work/in" ;;
  stress)  : > "$work/in"; set -- "${ALLOC_STRESS:?}" 4 4000 262144 ;;
  *) echo "acceptance.sh: unknown case '$case_name'" >&2; exit 2 ;;
esac

stat_of() { awk -v f="$1" '$1 == f { print $2 }' "$2"; }

"$@" > "$work/expected"
UPAGER_READAHEAD=4K "$upager" run --budget 2G --stats -- "$@" > "$work/roomy.out" 2> "$work/roomy.stats"
heap_pages=$(stat_of pages_resident_peak "$work/roomy.stats")
budget_pages=$((heap_pages / 8))
if [ "$budget_pages" -lt 16 ]; then
  echo "$case_name: heap of $heap_pages pages is too small to test" >&2
  exit 1
fi
budget=$((budget_pages * page))

start=$(date +%s.%N)
"$upager" run --budget "$budget" --stats -- "$@" > "$work/paged.out" 2> "$work/paged.stats"
end=$(date +%s.%N)

majors=$(stat_of fault_major "$work/paged.stats")
peak=$(stat_of pages_resident_peak "$work/paged.stats")
printf '%s: heap %d KiB, budget %d KiB (1/8), resident peak %d KiB, %d major faults, %.1f s\n' \
  "$case_name" $((heap_pages * 4)) $((budget / 1024)) $((peak * 4)) "$majors" \
  "$(awk -v a="$start" -v b="$end" 'BEGIN { print b - a }')"

cmp "$work/expected" "$work/roomy.out"
cmp "$work/expected" "$work/paged.out"
[ "$majors" -gt 0 ] || { echo "$case_name: nothing was paged back in" >&2; exit 1; }
[ "$peak" -le "$budget_pages" ] || { echo "$case_name: resident peak over the budget" >&2; exit 1; }
echo "$case_name: output identical to the normal run"
