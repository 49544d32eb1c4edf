#!/usr/bin/env bash
# Instructions per request (callgrind), errgate against the bare Pingora floor, on every load
# path. Deterministic where wall-clock CPU is not: instruction counts do not move with a busy
# machine. Loopback only; every process is stopped on exit.
#
# Usage: benches/load/profile.sh      (needs valgrind and wrk; installs them with apt-get as root)
# Knobs: DURATION=4s (measured wrk run per path, under valgrind), CONNS=4, THREADS=1,
#        ROUNDS=1 (each cell is the median over rounds; instructions per request move by about
#        1% between runs with how many requests each wake-up serves),
#        ONLY="small inband_ok", NO_BUILD=1, BASE_PORT=18180, ERRGATE_ARGS (extra config YAML
#        lines for errgate, e.g. $'access_log:\n  target: off'), KEEP=DIR (keep the callgrind
#        dumps there, for callgrind_annotate), VALGRIND_ARGS (extra callgrind options, e.g.
#        --cache-sim=yes: the kept dumps then also count simulated first-level cache misses,
#        `callgrind_annotate DIR/errgate-small-cg.out.1 | grep TOTALS`; self cost per function
#        and request, or its difference between two dumps: benches/load/cg_self.py)
#
# Method: the proxy runs under `valgrind --tool=callgrind`; after a 2 s warm-up (pools filled)
# its counters are zeroed (`callgrind_control -z`), wrk runs for DURATION, the counters are
# dumped (`callgrind_control -d`) and the dump's total Ir is divided by the requests wrk
# completed. The canned upstream runs natively.
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
DURATION="${DURATION:-4s}"
CONNS="${CONNS:-4}"
THREADS="${THREADS:-1}"
ROUNDS="${ROUNDS:-1}"
BASE_PORT="${BASE_PORT:-18180}"
TARGET_DIR="${CARGO_TARGET_DIR:-$REPO/target}"
BIN="$TARGET_DIR/release"
P_UP=$BASE_PORT
P_PROXY=$((BASE_PORT + 1))
P_ADMIN=$((BASE_PORT + 2))

# shellcheck source=benches/load/paths.sh
. "$REPO/benches/load/paths.sh"

log() { echo "# $*" >&2; }
for t in valgrind:valgrind wrk:wrk; do
  cmd=${t%%:*}; pkg=${t##*:}
  if ! command -v "$cmd" >/dev/null; then
    [ "$(id -u)" = 0 ] || die "$cmd is needed (apt-get install $pkg)"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q "$pkg" >/dev/null 2>&1 ||
      { apt-get update -q >/dev/null 2>&1; DEBIAN_FRONTEND=noninteractive apt-get install -y -q "$pkg" >/dev/null; }
  fi
done

if [ "${NO_BUILD:-0}" != 1 ]; then
  log "building release binaries"
  (cd "$REPO" && cargo build --release --bin errgate --example floor --example canned_upstream) >&2
fi

WORK="$(mktemp -d /tmp/errgate-profile.XXXXXX)"
PIDS=()
trap stop_pids_and_clean EXIT
trap 'exit 130' INT TERM

"$BIN/examples/canned_upstream" "127.0.0.1:$P_UP" 1 >"$WORK/upstream.log" 2>&1 &
PIDS+=($!)
wait_listen "$P_UP"

mkdir -p "$WORK/errgate"
errgate_yaml "$P_PROXY" "$P_ADMIN" "${ERRGATE_ARGS:-}" >"$WORK/errgate/errgate.yaml"

measure() { # measure TARGET PATH -> prints "Ir requests"
  local target=$1 path=$2 out="$WORK/cg.out" pid
  rm -f "$out"*
  case $target in
    floor) valgrind --tool=callgrind ${VALGRIND_ARGS:-} --callgrind-out-file="$out" \
             "$BIN/examples/floor" "127.0.0.1:$P_PROXY" "127.0.0.1:$P_UP" "$THREADS" >"$WORK/$target.log" 2>&1 & ;;
    errgate) RUST_LOG=warn valgrind --tool=callgrind ${VALGRIND_ARGS:-} --callgrind-out-file="$out" \
             "$BIN/errgate" run --config "$WORK/errgate/errgate.yaml" >"$WORK/$target.log" 2>&1 & ;;
  esac
  pid=$!; PIDS+=($pid)
  wait_listen "$P_PROXY"
  wrk -t1 -c"$CONNS" -d2s "http://127.0.0.1:$P_PROXY$path" >/dev/null 2>&1
  callgrind_control -z "$pid" >/dev/null
  local reqs
  reqs=$(wrk -t1 -c"$CONNS" -d"$DURATION" "http://127.0.0.1:$P_PROXY$path" 2>/dev/null |
    awk '/requests in/ { print $1 }')
  callgrind_control -d "$pid" >/dev/null
  sleep 0.5
  local ir
  ir=$(cat "$out"* 2>/dev/null | awk '/^summary:/ { s += $2 } END { print s + 0 }')
  if [ -n "${KEEP:-}" ]; then
    mkdir -p "$KEEP"
    for f in "$out"*; do cp "$f" "$KEEP/$target-$(basename "$path")-$(basename "$f")"; done
  fi
  kill -INT "$pid" 2>/dev/null || true
  for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  kill -9 "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
  echo "$ir ${reqs:-0}"
}

echo "errgate instructions per request (callgrind)  $(date -u '+%Y-%m-%d %H:%M UTC')  $(git -C "$REPO" rev-parse --short HEAD 2>/dev/null)"
echo "wrk -t1 -c$CONNS -d$DURATION after a 2 s warm-up; proxy threads $THREADS; median of $ROUNDS round(s)"
echo
printf '| %-14s | %-7s | %12s | %14s | %13s | %-26s |\n' path kind "floor Ir/req" "errgate Ir/req" "errgate/floor" "target"
echo "|----------------|---------|--------------|----------------|---------------|----------------------------|"
median() { printf '%s\n' "$@" | sort -n | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }
floor_small=""
for spec in "${PATHS[@]}"; do
  IFS='|' read -r name epath fpath kind <<<"$spec"
  fs=(); es=()
  for _ in $(seq 1 "$ROUNDS"); do
    read -r fir freq <<<"$(measure floor "$fpath")"
    read -r eir ereq <<<"$(measure errgate "$epath")"
    fs+=("$(awk -v i="$fir" -v r="$freq" 'BEGIN { printf "%.0f", (r > 0 ? i / r : 0) }')")
    es+=("$(awk -v i="$eir" -v r="$ereq" 'BEGIN { printf "%.0f", (r > 0 ? i / r : 0) }')")
    log "$name: floor $fir Ir / $freq req, errgate $eir Ir / $ereq req"
  done
  f=$(median "${fs[@]}")
  e=$(median "${es[@]}")
  [ "$name" = small ] && floor_small=$f
  if [ "$kind" = success ]; then
    ratio=$(awk -v e="$e" -v f="$f" 'BEGIN { printf "%.2f", (f > 0 ? e / f : 0) }')
    verdict=$(awk -v r="$ratio" 'BEGIN { print (r <= 1.00 ? "met (<= 1.00x same path)" : "MISSED (> 1.00x same path)") }')
  else
    base=${floor_small:-$f}
    ratio=$(awk -v e="$e" -v f="$base" 'BEGIN { printf "%.2f", (f > 0 ? e / f : 0) }')
    verdict=$(awk -v r="$ratio" 'BEGIN { print (r <= 1.25 ? "met (<= 1.25x floor small)" : "MISSED (> 1.25x floor small)") }')
  fi
  printf '| %-14s | %-7s | %12s | %14s | %12sx | %-26s |\n' "$name" "$kind" "$f" "$e" "$ratio" "$verdict"
done
