#!/bin/sh
# docs_current.sh: the docs that list what the code defines cannot drift.
#   docs_current.sh UPAGER SOURCE_DIR options   docs/options.md is exactly
#                                               `upager options --markdown`
set -eu
upager=$1 src=$2
case $3 in
options)
  if ! "$upager" options --markdown | diff -u "$src/docs/options.md" -; then
    echo "docs/options.md is stale: build/cli/upager options --markdown > docs/options.md" >&2
    exit 1
  fi ;;
*) echo "usage: docs_current.sh UPAGER SOURCE_DIR options" >&2; exit 2 ;;
esac
