#!/usr/bin/env bash
# expect_exit.sh CODE PATTERN -- COMMAND [ARGS...]
#
# Runs COMMAND with stdout and stderr captured whole, then passes only if
# it exited with CODE and its output contains the fixed string PATTERN.
# The output is read to its end before it is searched: piping a program
# into `grep -q` lets grep exit at the first match, and the program's next
# write then dies of SIGPIPE (status 141) on a loaded machine.
set -u
if [ $# -lt 4 ] || [ "$3" != "--" ]; then
    echo "usage: $0 CODE PATTERN -- COMMAND [ARGS...]" >&2
    exit 2
fi
want=$1 pattern=$2
shift 3
out=$("$@" 2>&1)
got=$?
case $out in
*"$pattern"*) found=1 ;;
*) found=0 ;;
esac
if [ "$got" -ne "$want" ] || [ "$found" -ne 1 ]; then
    printf 'command: %s\nexit: %s (want %s)\npattern "%s" found: %s\noutput:\n%s\n' \
        "$*" "$got" "$want" "$pattern" "$found" "$out" >&2
    exit 1
fi
