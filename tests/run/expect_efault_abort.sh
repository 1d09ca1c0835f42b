#!/bin/sh
# expect_efault_abort.sh: the EFAULT safety net must end a program whose
# raw syscall() hit paged memory, by SIGABRT and with a message, instead of
# letting it carry on.   expect_efault_abort.sh UPAGER PRELOAD_PROBE
set -u
err=$(mktemp)
"$1" run --budget 1M -- "$2" efault 2> "$err"
status=$?
cat "$err"
grep -q "EFAULT on paged memory" "$err" || { echo "no safety-net message" >&2; exit 1; }
[ "$status" -eq 134 ] || { echo "exit status $status, expected 134 (SIGABRT)" >&2; exit 1; }
echo "the safety net stopped the program"
