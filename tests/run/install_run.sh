#!/bin/sh
# install_run.sh: after `cmake --install` into a fresh prefix, the installed
# `upager run` finds the installed preload library (not the build tree's)
# and runs a program with it.   install_run.sh BUILD_DIR
set -eu
prefix=$(mktemp -d)
trap 'rm -rf "$prefix"' EXIT
cmake --install "$1" --prefix "$prefix" > /dev/null
preload=$("$prefix/bin/upager" run -- sh -c 'echo "$LD_PRELOAD"')
case $preload in
  "$prefix"/*/libupager_preload.so) ;;
  *) echo "install_run: the installed upager preloads '$preload'" >&2; exit 1 ;;
esac
[ -f "$preload" ] || { echo "install_run: $preload is missing" >&2; exit 1; }
sum=$(seq 1 30000 | sort -r | "$prefix/bin/upager" run --budget 1M -- sort -n | cksum)
[ "$sum" = "$(seq 1 30000 | cksum)" ] || { echo "install_run: wrong output" >&2; exit 1; }
echo "install_run: the installed upager runs programs with $preload"
