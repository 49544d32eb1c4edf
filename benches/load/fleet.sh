#!/usr/bin/env bash
# Fleet cooldown store benchmark (issue 14), loopback only:
#  1. propagation: p50/p99/max from a hold recorded in one table until another table (its own
#     store task) answers for it, over a real redis-server (examples/fleet_propagation.rs);
#  2. success-path CPU per request of errgate with `cooldown.store: memory` vs a Redis URL, through
#     benches/load/run.sh (errgate only, the `small` success path), ROUNDS rounds each.
# Usage: benches/load/fleet.sh   (needs redis-server, and what run.sh needs)
# Knobs: HOLDS=200, ROUNDS=3, DURATION=10s, NO_BUILD=1 (use existing release binaries); the
# rest are run.sh's.
set -euo pipefail
REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
TARGET_DIR="${CARGO_TARGET_DIR:-$REPO/target}"
HOLDS="${HOLDS:-200}"
export ROUNDS="${ROUNDS:-3}" DURATION="${DURATION:-10s}"
command -v redis-server >/dev/null || { echo "redis-server is missing (.ci/install.d/20-redis.sh)" >&2; exit 1; }
if [ -z "${NO_BUILD:-}" ]; then
  (cd "$REPO" && cargo build --release --bin errgate --example floor --example canned_upstream \
    --example fleet_propagation) >&2
fi
WORK="$(mktemp -d)"
PORT="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')"
redis-server --port "$PORT" --bind 127.0.0.1 --save '' --appendonly no --dir "$WORK" >"$WORK/redis.log" 2>&1 &
RPID=$!
trap 'kill "$RPID" 2>/dev/null; wait "$RPID" 2>/dev/null; rm -rf "$WORK"' EXIT
for _ in $(seq 50); do
  redis-cli -p "$PORT" ping >/dev/null 2>&1 && break
  sleep 0.1
done
URL="redis://127.0.0.1:$PORT/0"

echo "== propagation ($HOLDS holds, store to store through $URL)"
"$TARGET_DIR/release/examples/fleet_propagation" "$URL" "$HOLDS"

cpu() {
  # The errgate small-path CPU µs/request column of run.sh's summary.
  NO_BUILD=1 TARGETS=errgate ONLY=small C1000_DURATION=0 ERRGATE_EXTRA_YAML="$1" \
    bash "$REPO/benches/load/run.sh" 2>/dev/null | tee "$WORK/$2.txt" >&2
}
echo "== success-path CPU per request, store: memory"
cpu "" memory
echo "== success-path CPU per request, store: $URL"
cpu "cooldown: { store: \"$URL\" }" redis
echo "== results in the two tables above (errgate CPU µs/req, small)"
