#!/usr/bin/env bash
# Instances of a cluster on one machine start together on one SQLite file:
# each must find the schema migrated once, never fail to start because
# another created the tables while it waited for the write lock (before
# session 10, 4 of 60 such starts failed "cannot start the game").
#   store_shared_file.sh OVERCOOKIED [ROUNDS]
set -u
bin=$1
rounds=${2:-20}
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
failed=0
for round in $(seq 1 "$rounds"); do
  rm -f "$dir"/db*
  pids=""
  for k in 1 2 3 4; do
    # Each serves until killed (at most 10 s).
    timeout 10 "$bin" --bind 127.0.0.1 --port 0 --db "$dir/db.sqlite" \
      --log-level error >"$dir/out$k" 2>&1 &
    pids="$pids $!"
  done
  # Until each has started or ended (bounded: 100 x 0.1 s).
  for _ in $(seq 1 100); do
    settled=0
    for k in 1 2 3 4; do
      grep -q "listening on" "$dir/out$k" && settled=$((settled + 1))
    done
    alive=0
    for pid in $pids; do kill -0 "$pid" 2>/dev/null && alive=$((alive + 1)); done
    [ $((settled + 4 - alive)) -ge 4 ] && break
    sleep 0.1
  done
  kill $pids 2>/dev/null
  wait
  for k in 1 2 3 4; do
    if ! grep -q "listening on" "$dir/out$k"; then
      echo "round $round, instance $k did not start:"
      cat "$dir/out$k"
      failed=$((failed + 1))
    fi
  done
done
echo "$failed of $((rounds * 4)) starts failed"
[ "$failed" -eq 0 ]
