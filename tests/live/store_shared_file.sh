#!/usr/bin/env bash
# Instances of a cluster on one machine start together on one SQLite file:
# each must find the schema migrated once, never fail to start because
# another created the tables while it waited for the write lock (before
# session 10, 4 of 60 such starts failed "cannot start the game"), nor
# end by itself once it listens. A failing round prints all four outputs.
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
  # Until each has started or ended (bounded: 100 x 0.1 s). One that has
  # started is not waited for again, alive or not.
  for _ in $(seq 1 100); do
    waiting=0
    k=0
    for pid in $pids; do
      k=$((k + 1))
      grep -q "listening on" "$dir/out$k" && continue
      kill -0 "$pid" 2>/dev/null && waiting=$((waiting + 1))
    done
    [ "$waiting" -eq 0 ] && break
    sleep 0.1
  done
  # Each serves until killed: one that ended by itself failed, even after
  # it listened.
  ended=""
  k=0
  for pid in $pids; do
    k=$((k + 1))
    kill -0 "$pid" 2>/dev/null || ended="$ended $k"
  done
  kill $pids 2>/dev/null
  wait
  bad=0
  for k in 1 2 3 4; do
    if ! grep -q "listening on" "$dir/out$k"; then
      echo "round $round, instance $k did not start"
      bad=$((bad + 1))
    elif [[ " $ended " == *" $k "* ]]; then
      echo "round $round, instance $k ended by itself after it started"
      bad=$((bad + 1))
    fi
  done
  if [ "$bad" -gt 0 ]; then
    failed=$((failed + bad))
    for k in 1 2 3 4; do
      echo "-- round $round, instance $k said:"
      cat "$dir/out$k"
    done
  fi
done
echo "$failed of $((rounds * 4)) starts failed"
[ "$failed" -eq 0 ]
