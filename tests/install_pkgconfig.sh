#!/bin/sh
# `cmake --install` into a fresh prefix, then a program that includes only
# <upager.h> builds with `pkg-config --cflags --libs upager` and runs, and
# the installed `upager` answers --version.
set -eu
build=$1
source_dir=$2
prefix=$(mktemp -d)
trap 'rm -rf "$prefix"' EXIT
cmake --install "$build" --prefix "$prefix" >/dev/null
pc=$(find "$prefix" -name upager.pc)
[ -n "$pc" ] || { echo "no upager.pc installed"; exit 1; }
export PKG_CONFIG_PATH="$(dirname "$pc")"
libdir=$(pkg-config --variable=libdir upager)
cc -Wall -Wextra -I"$source_dir/examples" "$source_dir/examples/array_sum.c" \
  $(pkg-config --cflags --libs upager) -Wl,-rpath,"$libdir" -o "$prefix/array_sum"
"$prefix/array_sum" 4M 32M | grep -q "Both sums are correct"
"$prefix/bin/upager" --version | grep -q "^upager "
echo "installed, built through pkg-config, ran"
