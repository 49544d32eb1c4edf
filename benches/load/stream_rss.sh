#!/usr/bin/env bash
# Streaming memory: a 1 GiB success response through errgate must raise its RSS by < 16 MiB.
# Streams through a status-signalling route (pluralkit: never held) and an in-band route
# (openim: held until the scanner sees errCode 0, then streamed). Loopback only, bounded.
# Usage: bash benches/load/stream_rss.sh [SIZE_BYTES]   (default 1 GiB)
set -euo pipefail
cd "$(dirname "$0")/../.."
SIZE=${1:-1073741824}
UP=127.0.0.1:18191; GW=18190; ADMIN=18192
cargo build --release --quiet --bin errgate --example stream_upstream
tmp=$(mktemp -d); pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$tmp"; }
trap cleanup EXIT
./target/release/examples/stream_upstream "$UP" "$SIZE" 2>/dev/null & pids+=($!)
cat > "$tmp/errgate.yaml" <<YAML
listen: 127.0.0.1:$GW
admin_listen: 127.0.0.1:$ADMIN
catalog_dir: $PWD/catalogs
threads: 2
timeouts: { read: 30s, total: 30s }
routes:
  - { name: pluralkit, vendor: pluralkit, path_prefix: /pluralkit, upstream: "http://$UP" }
  - { name: openim, vendor: openim, path_prefix: /openim, upstream: "http://$UP" }
YAML
./target/release/errgate run --config "$tmp/errgate.yaml" --pid-file "$tmp/pid" --upgrade-sock "$tmp/sock" 2>"$tmp/log" & gw=$!; pids+=($gw)
for _ in $(seq 100); do curl -sf "http://127.0.0.1:$ADMIN/readyz" >/dev/null && break; sleep 0.1; done
kib() { awk -v k="$1" '$1==k":" {print $2}' "/proc/$gw/status"; }
curl -s -o /dev/null "http://127.0.0.1:$GW/pluralkit/warmup" --max-time 60 || true
printf '%-10s %12s %12s %12s %10s %8s\n' route bytes rss_before_k rss_hwm_k rise_mib secs
for route in pluralkit openim; do
  before=$(kib VmRSS)
  t0=$(date +%s.%N)
  got=$(curl -s -o /dev/null -w '%{size_download}' --max-time 120 "http://127.0.0.1:$GW/$route/big")
  t1=$(date +%s.%N)
  hwm=$(kib VmHWM)
  rise=$(awk -v a="$hwm" -v b="$before" 'BEGIN{printf "%.1f", (a-b)/1024}')
  printf '%-10s %12s %12s %12s %10s %8.1f\n' "$route" "$got" "$before" "$hwm" "$rise" "$(awk -v a="$t1" -v b="$t0" 'BEGIN{print a-b}')"
  [ "$got" = "$SIZE" ] || { echo "FAIL: got $got bytes, want $SIZE"; exit 1; }
done
echo "target: rise < 16 MiB for each route (VmHWM after minus VmRSS before; HWM is cumulative, so the second row bounds both)"
