#!/usr/bin/env bash
# errgate load benchmark: one run, loopback only.
#
# Starts a canned upstream (examples/canned_upstream.rs), the floor (examples/floor.rs: bare
# Pingora passthrough, no filters), errgate, and nginx + HAProxy as reverse proxies to the same
# upstream; drives each with wrk over the same paths; prints requests/s, p50/p99 latency, proxy
# CPU microseconds per request (from /proc, all threads and child processes), peak RSS (VmHWM),
# errgate's ratios to the floor and the issue's targets; then errgate's RSS with 1,000
# concurrent connections. See benches/load/README.md.
#
# Usage: benches/load/run.sh            (from anywhere; needs cargo; installs wrk/nginx/haproxy
#                                        with apt-get when missing and run as root)
# Knobs (environment):
#   DURATION=10s      measured wrk run per target and path
#   WARMUP=2s         unmeasured wrk run before each measured one (fills connection pools)
#   CONNS=32          wrk connections
#   WRK_THREADS=1     wrk threads
#   THREADS=1         worker threads of floor and errgate (nginx workers, HAProxy nbthread)
#   UPSTREAM_THREADS=1
#   PIN=1             pin the proxy under test to the last CPU, wrk + upstream to the others
#   TARGETS="floor errgate nginx haproxy"   (also: errgate_nolog, errgate with the access log off;
#                     errgate itself writes its default access log, JSON lines to stdout, here a
#                     file in the work dir: TARGETS="errgate errgate_nolog" measures the log's cost)
#   ROUNDS=1          repeat the whole path x target matrix; the tables show per-cell medians;
#                     even rounds reverse the target order (use an even ROUNDS: order bias)
#   ONLY="small inband_ok"  run only these paths (names as printed); default all
#   C1000_DURATION=5s duration of the 1,000-connection RSS run (0 = skip)
#   BASE_PORT=18080   ports BASE..BASE+5 and BASE+12..BASE+13 are used
#   NO_BUILD=1        skip cargo build (use existing release binaries)
#   KEEP=DIR          copy the raw wrk outputs and result tables to DIR
#   ERRGATE_BIN=PATH  errgate binary to measure (default: the release build), e.g. a patched one
#   ERRGATE_EXTRA_YAML=TEXT  top-level YAML added to errgate's config (benches/load/fleet.sh sets
#                     `cooldown: { store: redis://... }`)
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
DURATION="${DURATION:-10s}"
WARMUP="${WARMUP:-2s}"
CONNS="${CONNS:-32}"
WRK_THREADS="${WRK_THREADS:-1}"
THREADS="${THREADS:-1}"
UPSTREAM_THREADS="${UPSTREAM_THREADS:-1}"
PIN="${PIN:-1}"
TARGETS="${TARGETS:-floor errgate nginx haproxy}"
C1000_DURATION="${C1000_DURATION:-5s}"
ROUNDS="${ROUNDS:-1}"
BASE_PORT="${BASE_PORT:-18080}"
TARGET_DIR="${CARGO_TARGET_DIR:-$REPO/target}"
BIN="$TARGET_DIR/release"

P_UP=$BASE_PORT
P_FLOOR=$((BASE_PORT + 1))
P_ERRGATE=$((BASE_PORT + 2))
P_NGINX=$((BASE_PORT + 3))
P_HAPROXY=$((BASE_PORT + 4))
P_ERRGATE_NOLOG=$((BASE_PORT + 5))
P_ADMIN=$((BASE_PORT + 12))
P_ADMIN_NOLOG=$((BASE_PORT + 13))

# shellcheck source=benches/load/paths.sh
. "$REPO/benches/load/paths.sh"

log() { echo "# $*" >&2; }

# --- tools -------------------------------------------------------------------------------------
apt_updated=0
ensure_tool() { # ensure_tool COMMAND PACKAGE REQUIRED
  local cmd=$1 pkg=$2 required=$3
  if command -v "$cmd" >/dev/null 2>&1 || [ -x "/usr/sbin/$cmd" ]; then return 0; fi
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    log "installing $pkg"
    if ! DEBIAN_FRONTEND=noninteractive apt-get install -y -q "$pkg" >/dev/null 2>&1; then
      if [ $apt_updated = 0 ]; then apt-get update -q >/dev/null 2>&1 || true; apt_updated=1; fi
      DEBIAN_FRONTEND=noninteractive apt-get install -y -q "$pkg" >/dev/null 2>&1 || true
    fi
  fi
  if command -v "$cmd" >/dev/null 2>&1 || [ -x "/usr/sbin/$cmd" ]; then return 0; fi
  [ "$required" = yes ] && die "$cmd is needed (apt-get install $pkg)"
  log "$cmd not available: skipping it"
  return 1
}
export PATH="$PATH:/usr/sbin:/sbin"
ensure_tool wrk wrk yes
have_nginx=0; have_haproxy=0
case " $TARGETS " in *" nginx "*) ensure_tool nginx nginx no && have_nginx=1 ;; esac
case " $TARGETS " in *" haproxy "*) ensure_tool haproxy haproxy no && have_haproxy=1 ;; esac

# --- build -------------------------------------------------------------------------------------
if [ "${NO_BUILD:-0}" != 1 ]; then
  log "building release binaries"
  (cd "$REPO" && cargo build --release --bin errgate --example floor --example canned_upstream) >&2
fi
ERRGATE_BIN="${ERRGATE_BIN:-$BIN/errgate}"
for b in "$ERRGATE_BIN" "$BIN/examples/floor" "$BIN/examples/canned_upstream"; do
  [ -x "$b" ] || die "missing $b (build first)"
done

# --- processes ---------------------------------------------------------------------------------
WORK="$(mktemp -d /tmp/errgate-load.XXXXXX)"
chmod 755 "$WORK"
PIDS=()
stop() { # stop PID...: SIGTERM, then SIGKILL after 2 s (Pingora's graceful shutdown would wait)
  local p
  for p in "$@"; do kill "$p" 2>/dev/null || true; done
  for _ in $(seq 1 20); do
    local alive=0
    for p in "$@"; do kill -0 "$p" 2>/dev/null && alive=1; done
    [ $alive = 0 ] && break
    sleep 0.1
  done
  for p in "$@"; do kill -9 "$p" 2>/dev/null || true; done
  for p in "$@"; do wait "$p" 2>/dev/null || true; done
}
cleanup() {
  [ ${#PIDS[@]} -gt 0 ] && stop "${PIDS[@]}"
  rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)" 2>/dev/null || true

NCPU=$(nproc)
LAST_CPU=$((NCPU - 1))
if [ "$PIN" = 1 ] && [ "$NCPU" -ge 2 ] && command -v taskset >/dev/null; then
  PROXY_CPUS="$LAST_CPU"
  LOAD_CPUS="0-$((NCPU - 2))"
  # taskset execs the command, so $! is the process itself.
  PIN_PROXY=(taskset -c "$PROXY_CPUS")
  PIN_LOAD=(taskset -c "$LOAD_CPUS")
else
  PIN=0
  PIN_PROXY=()
  PIN_LOAD=()
fi

port_free() { ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
for p in $P_UP $P_FLOOR $P_ERRGATE $P_NGINX $P_HAPROXY $P_ERRGATE_NOLOG $P_ADMIN $P_ADMIN_NOLOG; do
  port_free "$p" || die "port $p is in use (a process left from an earlier run?); set BASE_PORT"
done

wait_port() { # wait_port PORT NAME PID
  for _ in $(seq 1 100); do
    if (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; then return 0; fi
    kill -0 "$3" 2>/dev/null || die "$2 exited; see $WORK/$2.log: $(tail -5 "$WORK/$2.log" 2>/dev/null)"
    sleep 0.1
  done
  die "$2 did not listen on $1"
}

declare -A PID PORT
start_upstream() {
  "${PIN_LOAD[@]}" "$BIN/examples/canned_upstream" "127.0.0.1:$P_UP" "$UPSTREAM_THREADS" >"$WORK/upstream.log" 2>&1 &
  PID[upstream]=$!; PIDS+=($!)
  wait_port "$P_UP" upstream "${PID[upstream]}"
}
start_floor() {
  "${PIN_PROXY[@]}" "$BIN/examples/floor" "127.0.0.1:$P_FLOOR" "127.0.0.1:$P_UP" "$THREADS" >"$WORK/floor.log" 2>&1 &
  PID[floor]=$!; PIDS+=($!); PORT[floor]=$P_FLOOR
  wait_port "$P_FLOOR" floor "${PID[floor]}"
}
start_errgate_as() { # start_errgate_as NAME PORT ADMIN_PORT EXTRA_YAML
  local name=$1 port=$2 admin=$3 extra=$4
  # Its own directory: errgate watches the config's directory for changes (and reloads), and
  # this script writes result files into $WORK during the runs.
  mkdir -p "$WORK/$name"
  errgate_yaml "$port" "$admin" "${ERRGATE_EXTRA_YAML:-}
$extra" >"$WORK/$name/errgate.yaml"
  # stdout (the access log by default) and stderr (the process log) go to files.
  RUST_LOG=warn "${PIN_PROXY[@]}" "$ERRGATE_BIN" run --config "$WORK/$name/errgate.yaml" \
    --pid-file "$WORK/$name.pid" --upgrade-sock "$WORK/$name.sock" >"$WORK/$name.access.log" 2>"$WORK/$name.log" &
  PID[$name]=$!; PIDS+=($!); PORT[$name]=$port
  wait_port "$port" "$name" "${PID[$name]}"
}
start_errgate() { start_errgate_as errgate "$P_ERRGATE" "$P_ADMIN" ""; }
start_errgate_nolog() { start_errgate_as errgate_nolog "$P_ERRGATE_NOLOG" "$P_ADMIN_NOLOG" "access_log: { target: off }"; }
start_nginx() {
  mkdir -p "$WORK/nginx/logs"
  local user=""
  [ "$(id -u)" = 0 ] && user="user root;"
  cat >"$WORK/nginx/nginx.conf" <<EOF
$user
worker_processes $THREADS;
worker_rlimit_nofile 16384;
daemon off;
pid $WORK/nginx/nginx.pid;
error_log $WORK/nginx/logs/error.log warn;
events { worker_connections 8192; multi_accept on; }
http {
  access_log off;
  client_body_temp_path $WORK/nginx/body;
  proxy_temp_path $WORK/nginx/proxy;
  fastcgi_temp_path $WORK/nginx/fcgi;
  uwsgi_temp_path $WORK/nginx/uwsgi;
  scgi_temp_path $WORK/nginx/scgi;
  keepalive_requests 1000000;
  upstream canned { server 127.0.0.1:$P_UP; keepalive 256; keepalive_requests 1000000; }
  server {
    listen 127.0.0.1:$P_NGINX;
    location / {
      proxy_pass http://canned;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_buffers 16 64k;
      proxy_max_temp_file_size 0;
    }
  }
}
EOF
  "${PIN_PROXY[@]}" nginx -p "$WORK/nginx" -c "$WORK/nginx/nginx.conf" -e "$WORK/nginx/logs/error.log" \
    >"$WORK/nginx.log" 2>&1 &
  PID[nginx]=$!; PIDS+=($!); PORT[nginx]=$P_NGINX
  wait_port "$P_NGINX" nginx "${PID[nginx]}"
}
start_haproxy() {
  cat >"$WORK/haproxy.cfg" <<EOF
global
  nbthread $THREADS
  maxconn 8000
defaults
  mode http
  timeout connect 5s
  timeout client 60s
  timeout server 60s
  timeout http-keep-alive 60s
  option http-keep-alive
  http-reuse always
frontend fe
  bind 127.0.0.1:$P_HAPROXY
  default_backend canned
backend canned
  server up 127.0.0.1:$P_UP
EOF
  "${PIN_PROXY[@]}" haproxy -db -f "$WORK/haproxy.cfg" >"$WORK/haproxy.log" 2>&1 &
  PID[haproxy]=$!; PIDS+=($!); PORT[haproxy]=$P_HAPROXY
  wait_port "$P_HAPROXY" haproxy "${PID[haproxy]}"
}

# --- /proc measurements ------------------------------------------------------------------------
CLK_TCK=$(getconf CLK_TCK)
tree() { # the PID and all its descendants
  local root=$1 all kids p arr
  all="$root"; kids="$root"
  while [ -n "$kids" ]; do
    local next=""
    for p in $kids; do
      next="$next $(awk -v pp="$p" '$4 == pp { print $1 }' /proc/[0-9]*/stat 2>/dev/null | tr '\n' ' ')"
    done
    read -r -a arr <<<"$next"
    kids="${arr[*]}"
    [ -n "$kids" ] && all="$all $kids"
  done
  echo "$all"
}
cpu_ticks() { # utime + stime of a process tree (each process counts all its threads); with
  # a second argument "user", utime alone
  local t=0 p v f='{ print $12 + $13 }'
  [ "${2:-}" = user ] && f='{ print $12 }'
  for p in $(tree "$1"); do
    # fields after the ")" of comm: state=1 ... utime=12 stime=13
    v=$(sed 's/^.*) //' "/proc/$p/stat" 2>/dev/null | awk "$f") || v=0
    t=$((t + ${v:-0}))
  done
  echo "$t"
}
hwm_kib() { # VmHWM summed over the process tree
  local t=0 p v
  for p in $(tree "$1"); do
    v=$(awk '/^VmHWM:/ { print $2 }' "/proc/$p/status" 2>/dev/null) || v=0
    t=$((t + ${v:-0}))
  done
  echo "$t"
}
rss_kib() {
  local t=0 p v
  for p in $(tree "$1"); do
    v=$(awk '/^VmRSS:/ { print $2 }' "/proc/$p/status" 2>/dev/null) || v=0
    t=$((t + ${v:-0}))
  done
  echo "$t"
}

# wrk latency "1.23ms" / "850.00us" / "1.02s" -> microseconds
to_us() { awk -v x="$1" 'BEGIN {
  if (x ~ /us$/) { sub(/us$/, "", x); print x + 0 }
  else if (x ~ /ms$/) { sub(/ms$/, "", x); print x * 1000 }
  else if (x ~ /m$/) { sub(/m$/, "", x); print x * 60e6 }
  else if (x ~ /s$/) { sub(/s$/, "", x); print x * 1e6 }
  else print x + 0 }'; }

RESULTS="$WORK/results.tsv"
: >"$RESULTS"
RAW="$WORK/raw"
mkdir -p "$RAW"
run_one() { # run_one ROUND TARGET NAME URLPATH
  local round=$1; shift
  local target=$1 name=$2 pid=${PID[$1]} url="http://127.0.0.1:${PORT[$1]}$3"
  local status
  status=$(curl -s -o /dev/null -w '%{http_code}' "$url" 2>/dev/null || echo "?")
  "${PIN_LOAD[@]}" wrk -t"$WRK_THREADS" -c"$CONNS" -d"$WARMUP" "$url" >/dev/null 2>&1 || true
  local c0 u0 c1 u1 us0 us1 out
  c0=$(cpu_ticks "$pid"); u0=$(cpu_ticks "${PID[upstream]}"); us0=$(cpu_ticks "$pid" user)
  out=$("${PIN_LOAD[@]}" wrk -t"$WRK_THREADS" -c"$CONNS" -d"$DURATION" --latency "$url" 2>&1) || true
  c1=$(cpu_ticks "$pid"); u1=$(cpu_ticks "${PID[upstream]}"); us1=$(cpu_ticks "$pid" user)
  echo "$out" >"$RAW/wrk.$round.$target.$name.txt"
  local reqs rps p50 p99 errs hwm
  reqs=$(echo "$out" | awk '/requests in/ { print $1 }')
  rps=$(echo "$out" | awk '/^Requests\/sec:/ { print $2 }')
  p50=$(to_us "$(echo "$out" | awk '$1 == "50%" { print $2 }')")
  p99=$(to_us "$(echo "$out" | awk '$1 == "99%" { print $2 }')")
  errs=$(echo "$out" | awk '/Socket errors/ { gsub(",", ""); print $4 + $6 + $8 + $10 }')
  hwm=$(hwm_kib "$pid")
  awk -v rd="$round" -v t="$target" -v n="$name" -v st="$status" -v r="${reqs:-0}" -v rps="${rps:-0}" \
      -v p50="$p50" -v p99="$p99" -v dc=$((c1 - c0)) -v du=$((u1 - u0)) -v dus=$((us1 - us0)) -v hz="$CLK_TCK" \
      -v hwm="$hwm" -v e="${errs:-0}" 'BEGIN {
    cpu = r > 0 ? dc * 1e6 / hz / r : 0; up = r > 0 ? du * 1e6 / hz / r : 0
    user = r > 0 ? dus * 1e6 / hz / r : 0
    printf "%s\t%s\t%s\t%s\t%d\t%.0f\t%.0f\t%.0f\t%.1f\t%.1f\t%.1f\t%d\t%.1f\n", rd, t, n, st, r, rps, p50, p99, cpu, up, hwm / 1024, e, user
  }' >>"$RESULTS"
  log "$(tail -1 "$RESULTS")"
}

# --- run ---------------------------------------------------------------------------------------
log "work dir $WORK; proxies pinned: $([ "$PIN" = 1 ] && echo "cpu $PROXY_CPUS, load on $LOAD_CPUS" || echo no)"
start_upstream
RUN_TARGETS=()
for t in $TARGETS; do
  case $t in
    floor) start_floor ;;
    errgate) start_errgate ;;
    errgate_nolog) start_errgate_nolog ;;
    nginx) [ $have_nginx = 1 ] || continue; start_nginx ;;
    haproxy) [ $have_haproxy = 1 ] || continue; start_haproxy ;;
    *) die "unknown target $t" ;;
  esac
  RUN_TARGETS+=("$t")
done

START_DATE=$(date -u '+%Y-%m-%d %H:%M UTC')
LOAD_BEFORE=$(cut -d' ' -f1-3 /proc/loadavg)
# Rounds outer, paths, then targets inner: the floor and errgate run back to back on each path.
# Even rounds run the targets in reverse order: on this VM whichever target runs first on a path
# reads 5-15% more CPU per request (measured: errgate/errgate_nolog 1.118x in one order, 0.952x
# in the other), so a fixed order biases every ratio. Use an even ROUNDS.
for round in $(seq 1 "$ROUNDS"); do
  ORDER=("${RUN_TARGETS[@]}")
  if [ $((round % 2)) = 0 ]; then
    ORDER=()
    for ((i = ${#RUN_TARGETS[@]} - 1; i >= 0; i--)); do ORDER+=("${RUN_TARGETS[i]}"); done
  fi
  for spec in "${PATHS[@]}"; do
    IFS='|' read -r name epath fpath kind <<<"$spec"
    for t in "${ORDER[@]}"; do
      case $t in errgate*) run_one "$round" "$t" "$name" "$epath" ;; *) run_one "$round" "$t" "$name" "$fpath" ;; esac
    done
  done
done
LOAD_AFTER=$(cut -d' ' -f1-3 /proc/loadavg)

# --- 1,000 connections: errgate's RSS (fresh processes so earlier 1 MiB runs do not count) ----
C1000=""
if [ "$C1000_DURATION" != 0 ]; then
  for t in floor errgate; do
    case " ${RUN_TARGETS[*]} " in *" $t "*) ;; *) continue ;; esac
    stop "${PID[$t]}"
    "start_$t"
    url="http://127.0.0.1:${PORT[$t]}$([ $t = errgate ] && echo /pluralkit/small || echo /small)"
    base=$(rss_kib "${PID[$t]}")
    out=$("${PIN_LOAD[@]}" wrk -t"$WRK_THREADS" -c1000 -d"$C1000_DURATION" --latency "$url" 2>&1) || true
    echo "$out" >"$RAW/wrk.$t.c1000.txt"
    during=$(rss_kib "${PID[$t]}")
    hwm=$(hwm_kib "${PID[$t]}")
    rps=$(echo "$out" | awk '/^Requests\/sec:/ { print $2 }')
    p99=$(to_us "$(echo "$out" | awk '$1 == "99%" { print $2 }')")
    errs=$(echo "$out" | awk '/Socket errors/ { gsub(",", ""); print $4 + $6 + $8 + $10 }')
    C1000="$C1000$(printf '%s\t%.1f\t%.1f\t%.1f\t%.0f\t%.0f\t%s' "$t" "$(echo "$base" | awk '{print $1/1024}')" \
      "$(echo "$during" | awk '{print $1/1024}')" "$(echo "$hwm" | awk '{print $1/1024}')" "${rps:-0}" "$p99" "${errs:-0}")"$'\n'
  done
fi

# --- report ------------------------------------------------------------------------------------
# Per target and path: the median over rounds of req/s, p50, p99, CPU/req, upstream CPU/req; the
# largest HWM; the sum of socket errors. (mawk-compatible: no asort.)
AGG="$WORK/agg.tsv"
awk -F'\t' '
  function med(k, c,   n, i, j, t, a) {
    n = cnt[k]
    for (i = 1; i <= n; i++) a[i] = v[k, c, i] + 0
    for (i = 2; i <= n; i++) { t = a[i]; for (j = i - 1; j >= 1 && a[j] > t; j--) a[j + 1] = a[j]; a[j + 1] = t }
    return a[int((n + 1) / 2)]
  }
  {
    k = $2 "\t" $3; if (!(k in cnt)) { order[++nk] = k; st[k] = $4 }
    n = ++cnt[k]
    for (c = 5; c <= 10; c++) v[k, c, n] = $c
    if ($11 + 0 > hwm[k]) hwm[k] = $11 + 0
    err[k] += $12
  }
  END {
    for (i = 1; i <= nk; i++) { k = order[i]
      printf "%s\t%s\t%d\t%.0f\t%.0f\t%.0f\t%.1f\t%.1f\t%.1f\t%d\t%d\n", k, st[k], med(k, 5), med(k, 6), med(k, 7), med(k, 8), med(k, 9), med(k, 10), hwm[k], err[k], cnt[k]
    }
  }' "$RESULTS" >"$AGG"
# AGG columns: 1 target 2 path 3 status 4 requests 5 req/s 6 p50 7 p99 8 cpu/req 9 upstream cpu/req 10 hwm 11 errors 12 rounds

echo
echo "errgate load benchmark  $START_DATE  $(nproc) CPU: $(awk -F': ' '/model name/ { print $2; exit }' /proc/cpuinfo)"
echo "wrk -t$WRK_THREADS -c$CONNS -d$DURATION --latency (warm-up $WARMUP), $ROUNDS round(s), medians; proxy threads $THREADS; upstream threads $UPSTREAM_THREADS; pinned: $([ "$PIN" = 1 ] && echo "proxy cpu $PROXY_CPUS, wrk+upstream cpu $LOAD_CPUS" || echo no); loadavg before $LOAD_BEFORE, after $LOAD_AFTER"
echo
printf '| %-8s | %-12s | %6s | %8s | %8s | %8s | %9s | %10s | %8s | %8s |\n' \
  target path status "req/s" "p50 us" "p99 us" "CPU us/r" "upstr us/r" "HWM MiB" "sock err"
echo "|----------|--------------|--------|----------|----------|----------|-----------|------------|----------|----------|"
for spec in "${PATHS[@]}"; do
  IFS='|' read -r name _ _ _ <<<"$spec"
  awk -F'\t' -v n="$name" '$2 == n { printf "| %-8s | %-12s | %6s | %8s | %8s | %8s | %9s | %10s | %8s | %8s |\n", $1, $2, $3, $5, $6, $7, $8, $9, $10, $11 }' "$AGG"
done

if grep -q '^floor' "$AGG" && grep -q '^errgate' "$AGG"; then
  echo
  echo "errgate / floor. Targets: success paths CPU/req <= 1.00x the floor's on the same path (p99 <= 1.2x reported);"
  echo "error paths CPU/req <= 1.25x the floor's CPU/req on the small success path."
  echo
  printf '| %-12s | %-7s | %9s | %-24s | %7s | %-14s |\n' path kind "CPU/req" "CPU target" "p99" "p99 target"
  echo "|--------------|---------|-----------|--------------------------|---------|----------------|"
  floor_small=$(awk -F'\t' '$1 == "floor" && $2 == "small" { print $8 }' "$AGG")
  for spec in "${PATHS[@]}"; do
    IFS='|' read -r name _ _ kind <<<"$spec"
    awk -F'\t' -v n="$name" -v k="$kind" -v fs="${floor_small:-0}" '
      $2 == n && $1 == "floor" { fc = $8; fp = $7 }
      $2 == n && $1 == "errgate" { ec = $8; ep = $7 }
      END {
        pr = fp > 0 ? ep / fp : 0
        if (k == "success") {
          cr = fc > 0 ? ec / fc : 0
          printf "| %-12s | %-7s | %8.2fx | %-24s | %6.2fx | %-14s |\n", n, k, cr,
            (cr <= 1.00 ? "met (<= 1.00x same path)" : "MISSED (> 1.00x)"), pr, (pr <= 1.2 ? "met (<= 1.2x)" : "MISSED (> 1.2x)")
        } else {
          cr = fs > 0 ? ec / fs : 0
          printf "| %-12s | %-7s | %8.2fx | %-24s | %6.2fx | %-14s |\n", n, k, cr,
            (cr <= 1.25 ? "met (<= 1.25x floor small)" : "MISSED (> 1.25x)"), pr, "none"
        }
      }' "$AGG"
  done
fi

if grep -q '^errgate_nolog' "$AGG" && grep -q '^errgate	' "$AGG"; then
  echo
  echo "Access log cost: errgate (JSON lines to a file via stdout) / errgate_nolog (access_log off). Target: CPU/req <= 1.05x."
  echo
  printf '| %-12s | %12s | %12s | %8s |\n' path "log on us/r" "log off us/r" "ratio"
  echo "|--------------|--------------|--------------|----------|"
  for spec in "${PATHS[@]}"; do
    IFS='|' read -r name _ _ _ <<<"$spec"
    awk -F'\t' -v n="$name" '
      $2 == n && $1 == "errgate" { on = $8 }
      $2 == n && $1 == "errgate_nolog" { off = $8 }
      END { printf "| %-12s | %12.1f | %12.1f | %7.3fx |\n", n, on, off, (off > 0 ? on / off : 0) }' "$AGG"
  done
fi

# Per-round ratios: both targets of a ratio run minutes apart at most, so drift on a shared
# machine (the noisy neighbour, the host's frequency) cancels better in the ratio of one round
# than in the ratio of two medians. The median over rounds, with the range.
if [ "$ROUNDS" -gt 1 ] && grep -q '^errgate' "$AGG"; then
  echo
  echo "Per-round ratios, median [min-max] over $ROUNDS rounds (CPU/req of errgate divided by the other target's in the same round):"
  echo
  printf '| %-14s | %-7s | %-24s | %-24s | %-24s | %-24s |\n' path kind "errgate / floor" "user CPU only" "errgate / floor small" "errgate / errgate_nolog"
  echo "|----------------|---------|--------------------------|--------------------------|--------------------------|--------------------------|"
  for spec in "${PATHS[@]}"; do
    IFS='|' read -r name _ _ kind <<<"$spec"
    awk -F'\t' -v n="$name" -v k="$kind" '
      function stat(a, m,   i, j, t, lo, hi) {
        if (m == 0) return "-"
        for (i = 2; i <= m; i++) { t = a[i]; for (j = i - 1; j >= 1 && a[j] > t; j--) a[j + 1] = a[j]; a[j + 1] = t }
        return sprintf("%.3fx [%.2f-%.2f]", (m % 2 ? a[(m + 1) / 2] : (a[m / 2] + a[m / 2 + 1]) / 2), a[1], a[m])
      }
      $3 == n { c[$2, $1] = $9; u[$2, $1] = $13; rounds[$1] = 1 }
      $3 == "small" && $2 == "floor" { fs[$1] = $9 }
      END {
        for (r in rounds) {
          e = c["errgate", r]; if (e == "") continue
          f = c["floor", r]; if (f > 0) fl[++nf] = e / f
          f = u["floor", r]; if (f > 0) fu[++nu] = u["errgate", r] / f
          if (k != "success" && fs[r] > 0) sm[++ns] = e / fs[r]
          o = c["errgate_nolog", r]; if (o > 0) lg[++nl] = e / o
        }
        printf "| %-14s | %-7s | %-24s | %-24s | %-24s | %-24s |\n", n, k, stat(fl, nf), stat(fu, nu), stat(sm, ns), stat(lg, nl)
      }' "$RESULTS"
  done
fi

if [ -n "$C1000" ]; then
  echo
  echo "1,000 concurrent connections on the small path (wrk -t$WRK_THREADS -c1000 -d$C1000_DURATION, fresh process; target: errgate RSS <= 64 MiB)"
  echo
  printf '| %-8s | %12s | %8s | %9s | %8s | %8s | %8s | %-17s |\n' target "idle RSS MiB" "RSS MiB" "VmHWM MiB" "req/s" "p99 us" "sock err" "RSS target"
  echo "|----------|--------------|----------|-----------|----------|----------|----------|-------------------|"
  echo -n "$C1000" | awk -F'\t' '{ printf "| %-8s | %12s | %8s | %9s | %8s | %8s | %8s | %-17s |\n", $1, $2, $3, $4, $5, $6, $7,
    ($1 == "errgate" ? ($4 <= 64 ? "met (<= 64 MiB)" : "MISSED (> 64 MiB)") : "") }'
fi
echo
echo "raw: round target path status requests req/s p50_us p99_us cpu_us_per_req upstream_cpu_us_per_req hwm_mib socket_errors user_cpu_us_per_req"
cat "$RESULTS"
if [ -n "${KEEP:-}" ]; then
  mkdir -p "$KEEP" && cp -r "$RAW" "$RESULTS" "$AGG" "$KEEP"/ && echo "wrk outputs kept in $KEEP"
fi
