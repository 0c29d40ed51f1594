#!/usr/bin/env bash
# check_timeouts.sh DIR: every Criterion .timeout in one test file is the
# same value. Criterion 2.4.1's runner (BoxFort's timeout list) leaks a
# 48-byte request when a test with an earlier deadline starts while another
# timed test of the binary runs, and LeakSanitizer then fails the whole
# binary under tools/test, whatever its tests did. Equal timeouts make a
# later start always the later deadline. (Per file: a binary built from
# several files has at most one file with timeouts today.)
set -euo pipefail
[ $# -eq 1 ] || { echo "usage: check_timeouts.sh DIR" >&2; exit 2; }
bad=0
while IFS= read -r f; do
  n=$(grep -o '\.timeout = [0-9]*' "$f" | sort -u | wc -l)
  if [ "$n" -gt 1 ]; then
    echo "check_timeouts: $f has $n different .timeout values:" \
      "$(grep -o '\.timeout = [0-9]*' "$f" | sort | uniq -c | tr -s ' \n' ' ')" >&2
    bad=1
  fi
done < <(grep -rl --include='*.c' '\.timeout = ' "$1")
[ "$bad" -eq 0 ] && echo "check_timeouts: one .timeout per file"
exit "$bad"
