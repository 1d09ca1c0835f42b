#!/bin/sh
# docs_current.sh: the docs that list what the code defines cannot drift.
#   docs_current.sh UPAGER SOURCE_DIR options   docs/options.md is exactly
#                                               `upager options --markdown`
#   docs_current.sh UPAGER SOURCE_DIR stats     docs/stats.md has a row for
#                                               every field of UPG_STATS_FIELDS
set -eu
upager=$1 src=$2
case $3 in
options)
  if ! "$upager" options --markdown | diff -u "$src/docs/options.md" -; then
    echo "docs/options.md is stale: build/cli/upager options --markdown > docs/options.md" >&2
    exit 1
  fi ;;
stats)
  fields=$(sed -n 's/^ *X(\([a-z_]*\), ".*/\1/p' "$src/include/upager.h")
  [ -n "$fields" ] || { echo "no UPG_STATS_FIELDS found in include/upager.h" >&2; exit 1; }
  missing=0
  for f in $fields; do
    grep -q "^| \`$f\` |" "$src/docs/stats.md" || { echo "docs/stats.md has no row for $f" >&2; missing=1; }
  done
  exit $missing ;;
*) echo "usage: docs_current.sh UPAGER SOURCE_DIR options|stats" >&2; exit 2 ;;
esac
