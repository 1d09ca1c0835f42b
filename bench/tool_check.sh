#!/bin/sh
# tool_check.sh: ordinary tools under `upager run --budget 2M`, each
# compared with a normal run: the same stdout and the same exit status.
# Not a test (some tools may be missing, and the larger inputs thrash for
# minutes); a tool not installed is reported and skipped.
#
#   bench/tool_check.sh UPAGER [BUDGET]       (BUDGET defaults to 2M)
set -u
upager=$(cd "$(dirname "$1")" && pwd)/$(basename "$1")
budget=${2:-2M}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
export LC_ALL=C
cd "$work"

seq 1 100000 | awk '{ printf "%d %x line-%d\n", ($1 * 7919) % 1000003,
                      ($1 * 2654435761) % 4294967296, $1 }' > text
head -n 50000 text > half
gzip -c text > text.gz
mkdir -p tree/a/b && cp half tree/a/b/ && cp text tree/a/

passed=0 failed=0 skipped=0
check() { # command line, run by sh in the work directory
  tool=${1%% *}
  if ! command -v "$tool" > /dev/null 2>&1; then
    printf 'skipped  %s (not installed)\n' "$1"; skipped=$((skipped + 1)); return
  fi
  sh -c "$1" > expected 2> /dev/null; want=$?
  "$upager" run --budget "$budget" -- sh -c "exec $1" > got 2> stderr; got=$?
  if [ "$want" = "$got" ] && cmp -s expected got; then
    printf 'same     %s\n' "$1"; passed=$((passed + 1))
  else
    printf 'DIFFERS  %s (exit %s normally, %s under upager)\n' "$1" "$want" "$got"; failed=$((failed + 1))
  fi
}

check "grep -c line-7 text"
check "sed -n 's/line-\([0-9]*\)9$/x\1/p' text"
check "awk '{ s += \$1 } END { print s }' text"
check "perl -ne 'print if /77/' text"
check "gzip -9 -c text"
check "bzip2 -c half"
check "xz -1 -c half"
check "md5sum text"
check "sha256sum text"
check "sort text"
check "uniq -c half"
check "wc text"
check "cut -d' ' -f2 text"
check "tac text"
check "diff half text"
check "tar -cf - tree"
check "find tree"
check "ls -lR tree"
check "du -a tree"
check "od -A x -t x1z half"
check "comm -3 half text"
check "join half half"
check "paste half half"
check "nl text"
check "fold -w 17 half"
check "rev half"
check "strings $upager"
check "objdump -d $upager"
check "readelf -a $upager"
check "file $upager text text.gz"
check "/usr/bin/python3 -c 'import sys; print(sum(len(l) for l in sys.stdin))' < text"
check "gzip -dc text.gz"
check "strace -o trace true"

echo "$passed same, $failed different, $skipped skipped"
[ "$failed" -eq 0 ]
