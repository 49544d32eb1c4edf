#!/usr/bin/env bash
# Paired wall-clock CPU per request, loopback only: the floor (bare Pingora), errgate with its
# default access log (JSON lines to stdout, here a file) and errgate with the log off, all running
# at once, each pinned to the same CPU and driven in turn by wrk for short slices, the order
# alternating every round. Each round gives ratios of targets measured seconds apart, so the
# drift of a shared 2-vCPU VM (±10-15% over minutes) cancels in the ratio; the report is the
# median, geometric mean and range of the per-round ratios.
#
# CPU time is read from /proc/PID/task/*/schedstat (nanoseconds on CPU, all threads) around a
# slice; requests from wrk over the same slice (wrk runs a little longer than the slice, which
# starts once wrk is saturating). run.sh reads clock ticks over 10 s runs, one target at a time,
# and its ratios moved by more than 10% with the target order; this script is for the ratios.
# After the table: each geometric mean's 95% confidence interval, from the spread of the
# per-round ratios.
#
# Usage: benches/load/paired.sh          (NO_BUILD=1 to use existing release binaries)
# Knobs: ROUNDS=10  SLICE=2 (seconds measured per target and round)  CONNS=32
#        TARGETS="floor errgate errgate_nolog"  ONLY="small inband_ok" (paths of paths.sh)
#        BASE_PORT=18480 (BASE..BASE+4 and BASE+12..BASE+14)  THREADS=1
#        ERRGATE_B=/path/to/errgate: adds target errgate_b, another build with the log on (an A/B
#        of a change: TARGETS="floor errgate errgate_b" BASES="floor errgate_b"
#        ERRGATE_B=/tmp/errgate-before); ERRGATE_B_ARGS: extra config YAML for it (an A/B with
#        the log off: TARGETS="floor errgate_nolog errgate_b" ERRGATE_B_ARGS="access_log: {
#        target: off }")
#        BASES="floor errgate_nolog": the two targets the ratio columns divide by
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
ROUNDS="${ROUNDS:-10}"
SLICE="${SLICE:-2}"
CONNS="${CONNS:-32}"
THREADS="${THREADS:-1}"
TARGETS="${TARGETS:-floor errgate errgate_nolog}"
read -r BASE1 BASE2 <<<"${BASES:-floor errgate_nolog}"
BASE_PORT="${BASE_PORT:-18480}"
BIN="${CARGO_TARGET_DIR:-$REPO/target}/release"
# shellcheck source=benches/load/paths.sh
. "$REPO/benches/load/paths.sh"

need_pinned_load
if [ "${NO_BUILD:-0}" != 1 ]; then
  (cd "$REPO" && cargo build --release --bin errgate --example floor --example canned_upstream) >&2
fi
for b in "$BIN/errgate" "$BIN/examples/floor" "$BIN/examples/canned_upstream"; do
  [ -x "$b" ] || die "missing $b (build first)"
done

LAST=$(($(nproc) - 1))
LOAD=(taskset -c "0-$((LAST - 1))")
PROXY=(taskset -c "$LAST")
WORK="$(mktemp -d /tmp/errgate-paired.XXXXXX)"
PIDS=()
trap stop_pids_and_clean EXIT
trap 'exit 130' INT TERM

P_UP=$BASE_PORT
"${LOAD[@]}" "$BIN/examples/canned_upstream" "127.0.0.1:$P_UP" 1 >"$WORK/upstream.log" 2>&1 &
PIDS+=($!)
wait_listen "$P_UP"

declare -A PID PORT
start_errgate() { # NAME PORT ADMIN EXTRA_YAML [BINARY]
  mkdir -p "$WORK/$1"
  errgate_yaml "$2" "$3" "$4" >"$WORK/$1/errgate.yaml"
  RUST_LOG=warn "${PROXY[@]}" "${5:-$BIN/errgate}" run --config "$WORK/$1/errgate.yaml" \
    --pid-file "$WORK/$1.pid" --upgrade-sock "$WORK/$1.sock" >"$WORK/$1.access.log" 2>"$WORK/$1.log" &
  PID[$1]=$!; PIDS+=($!); PORT[$1]=$2
  wait_listen "$2"
}
for t in $TARGETS; do
  case $t in
    floor)
      "${PROXY[@]}" "$BIN/examples/floor" "127.0.0.1:$((BASE_PORT + 1))" "127.0.0.1:$P_UP" "$THREADS" \
        >"$WORK/floor.log" 2>&1 &
      PID[floor]=$!; PIDS+=($!); PORT[floor]=$((BASE_PORT + 1))
      wait_listen "${PORT[floor]}" ;;
    errgate) start_errgate errgate $((BASE_PORT + 2)) $((BASE_PORT + 12)) "" ;;
    errgate_nolog) start_errgate errgate_nolog $((BASE_PORT + 3)) $((BASE_PORT + 13)) \
      "access_log: { target: off }" ;;
    errgate_b)
      [ -x "${ERRGATE_B:-}" ] || die "target errgate_b needs ERRGATE_B=/path/to/errgate"
      start_errgate errgate_b $((BASE_PORT + 4)) $((BASE_PORT + 14)) "${ERRGATE_B_ARGS:-}" "$ERRGATE_B" ;;
    *) die "unknown target $t" ;;
  esac
done

on_cpu_ns() { # the process's threads' time on CPU, nanoseconds
  cat /proc/"$1"/task/*/schedstat 2>/dev/null | awk '{ s += $1 } END { printf "%.0f", s }'
}

RES="$WORK/res.tsv"
read -r -a FWD <<<"$TARGETS"
REV=()
for ((i = ${#FWD[@]} - 1; i >= 0; i--)); do REV+=("${FWD[i]}"); done
echo "errgate paired CPU per request  $(date -u '+%Y-%m-%d %H:%M UTC')  $(git -C "$REPO" rev-parse --short HEAD 2>/dev/null)"
echo "$ROUNDS rounds of ${SLICE} s per target (order reversed every other round), wrk -t1 -c$CONNS on cpu 0-$((LAST - 1)), proxies on cpu $LAST; loadavg $(cut -d' ' -f1-3 /proc/loadavg)"
for spec in "${PATHS[@]}"; do
  IFS='|' read -r name epath fpath _ <<<"$spec"
  for r in $(seq 1 "$ROUNDS"); do
    order=("${FWD[@]}")
    [ $((r % 2)) = 0 ] && order=("${REV[@]}")
    for t in "${order[@]}"; do
      case $t in errgate*) path=$epath ;; *) path=$fpath ;; esac
      url="http://127.0.0.1:${PORT[$t]}$path"
      "${LOAD[@]}" wrk -t1 -c"$CONNS" -d1s "$url" >/dev/null 2>&1 || true
      "${LOAD[@]}" wrk -t1 -c"$CONNS" -d"$((SLICE + 1))s" "$url" >"$WORK/wrk.out" 2>&1 &
      wpid=$!
      sleep 0.5
      n0=$(on_cpu_ns "${PID[$t]}"); s0=$(date +%s%N)
      sleep "$SLICE"
      n1=$(on_cpu_ns "${PID[$t]}"); s1=$(date +%s%N)
      wait "$wpid" || true
      rps=$(awk '/^Requests\/sec:/ { print $2 }' "$WORK/wrk.out")
      # CPU µs per request: CPU time over the slice / (requests per second × slice length).
      awk -v p="$name" -v r="$r" -v t="$t" -v c=$((n1 - n0)) -v w=$((s1 - s0)) -v q="${rps:-0}" \
        'BEGIN { printf "%s\t%s\t%s\t%.3f\n", p, r, t, (q > 0 ? c / 1000 / (q * w / 1e9) : 0) }' >>"$RES"
    done
  done
done

echo
printf '| %-14s | %-13s | %10s | %-34s | %-34s |\n' path target "CPU us/r" "/ $BASE1: median, geomean [range]" "/ $BASE2: median, geomean [range]"
echo "|----------------|---------------|------------|------------------------------------|------------------------------------|"
for spec in "${PATHS[@]}"; do
  IFS='|' read -r name _ _ _ <<<"$spec"
  for t in "${FWD[@]}"; do
    awk -F'\t' -v p="$name" -v t="$t" -v b1="$BASE1" -v b2="$BASE2" '
      function sort(a, n,   i, j, x) { for (i = 2; i <= n; i++) { x = a[i]; for (j = i - 1; j >= 1 && a[j] > x; j--) a[j + 1] = a[j]; a[j + 1] = x } }
      function med(a, n) { return n % 2 ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2 }
      function ratios(base,   n, r, g, a) {
        n = 0; g = 0
        for (r in own) if (v[base, r] > 0) { a[++n] = own[r] / v[base, r]; g += log(a[n]) }
        if (n == 0 || base == t) return "-"
        sort(a, n)
        return sprintf("%.3fx, %.3fx [%.2f-%.2f]", med(a, n), exp(g / n), a[1], a[n])
      }
      $1 == p { v[$3, $2] = $4; if ($3 == t) { own[$2] = $4; c[++m] = $4 } }
      END {
        sort(c, m)
        printf "| %-14s | %-13s | %10.1f | %-34s | %-34s |\n", p, t, med(c, m), ratios(b1), ratios(b2)
      }' "$RES"
  done
done
echo
# Whether a ratio is under a target is a question about its geometric mean, not one round:
# exp(mean ± 1.96 sd/√n) of the per-round log ratios.
echo "95% confidence intervals of the geometric means (per-round ratios to $BASE1 and $BASE2):"
for spec in "${PATHS[@]}"; do
  IFS='|' read -r name _ _ _ <<<"$spec"
  for t in "${FWD[@]}"; do
    awk -F'\t' -v p="$name" -v t="$t" -v b1="$BASE1" -v b2="$BASE2" '
      function ci(base,   r, n, s, ss, x, m, se) {
        if (base == t) return "-"
        n = 0; s = 0; ss = 0
        for (r in own) if (v[base, r] > 0) { x = log(own[r] / v[base, r]); n++; s += x; ss += x * x }
        if (n < 2) return "-"
        m = s / n; x = ss - n * m * m
        se = sqrt((x > 0 ? x : 0) / (n - 1) / n)
        return sprintf("%.3fx [%.3f, %.3f]", exp(m), exp(m - 1.96 * se), exp(m + 1.96 * se))
      }
      $1 == p { v[$3, $2] = $4; if ($3 == t) own[$2] = $4 }
      END { printf "  %-14s %-13s / %s: %-28s / %s: %s\n", p, t, b1, ci(b1), b2, ci(b2) }' "$RES"
  done
done
echo
echo "raw: path round target cpu_us_per_req"
cat "$RES"
