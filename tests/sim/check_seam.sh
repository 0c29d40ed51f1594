#!/usr/bin/env bash
# check_seam.sh [--expect SYM]... LIB...: the build-level guard of the world
# seam (DESIGN.md). Code above the seam -- runtime/, sim/, game/ and the
# simulator's driver -- must take time, randomness and concurrency from the
# world, never from libc: no wall clock, no rand(), no threads. Each static
# library's undefined symbols (nm -u) are matched against that list; net/
# is below the seam and is not checked.
#
# Exit 0 when no library references a forbidden symbol. With --expect SYM
# (repeatable), exit 0 only when exactly the expected symbols are found:
# the guard's own test, on a canary library that calls them on purpose.
set -euo pipefail

forbidden='^(time|clock|clock_gettime|clock_getres|gettimeofday|ftime|timespec_get|rand|srand|rand_r|random|srandom|initstate|setstate|drand48|erand48|lrand48|nrand48|mrand48|jrand48|srand48|seed48|getrandom|getentropy|arc4random|arc4random_buf|pthread_create|thrd_create|sleep|usleep|nanosleep)$'

expect=()
while [ $# -gt 0 ] && [ "$1" = "--expect" ]; do
  expect+=("$2")
  shift 2
done
[ $# -gt 0 ] || { echo "usage: check_seam.sh [--expect SYM]... LIB..." >&2; exit 2; }

found=()
for lib in "$@"; do
  [ -f "$lib" ] || { echo "check_seam: no such library: $lib" >&2; exit 2; }
  # "lib.a:member.o:   U symbol" for each undefined symbol of each member.
  while IFS= read -r line; do
    sym=${line##* }
    sym=${sym%%@*}
    if [[ $sym =~ $forbidden ]]; then
      where=${line%%:*U *}
      echo "check_seam: ${where##*/} references $sym" >&2
      found+=("$sym")
    fi
  done < <(nm -A -u "$lib")
done

if [ ${#expect[@]} -gt 0 ]; then
  want=$(printf '%s\n' "${expect[@]}" | sort -u | tr '\n' ' ')
  got=$(printf '%s\n' "${found[@]}" | sort -u | tr '\n' ' ')
  if [ "$want" = "$got" ]; then
    echo "check_seam: caught exactly: $got"
    exit 0
  fi
  echo "check_seam: expected '$want', found '$got'" >&2
  exit 1
fi
if [ ${#found[@]} -gt 0 ]; then
  echo "check_seam: code above the seam uses the wall clock, rand() or threads" >&2
  exit 1
fi
echo "check_seam: $# libraries clean"
