#!/usr/bin/env bash
# CPU per request by thread of one errgate process, loopback only: where a request's CPU goes
# (the Pingora worker, the access log writer, the config watcher). Complements paired.sh (the
# process's total against the floor) and profile.sh (instructions, which leave out the kernel):
# the access log writer's time here includes the kernel's cost of storing the log's bytes.
#
# Usage: benches/load/threads.sh          (NO_BUILD=1 to use an existing release binary)
# Knobs: PATH_NAME=small (a path of paths.sh)  DURATION=5 (seconds measured)  CONNS=32
#        THREADS=1  BASE_PORT=18680 (BASE..BASE+2)
#        ERRGATE_ARGS: extra config YAML (e.g. "access_log: { target: off }")
#        LOG_TO=/dev/null: where errgate's stdout (the default access log) goes; a file in a
#        fresh temporary directory by default, as in paired.sh
#
# Method: the upstream and wrk on CPU 0, errgate on the last CPU (as paired.sh); after a 2 s
# warm-up, /proc/PID/task/*/schedstat (nanoseconds on CPU) is read per thread before and after
# a wrk run of DURATION and the difference is divided by the requests wrk completed. Threads of
# the same name (Pingora's workers with THREADS>1) are summed. One run moves by 10% or more on
# a shared VM: repeat it and compare within a run (the threads' shares), not across runs.
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
PATH_NAME="${PATH_NAME:-small}"
DURATION="${DURATION:-5}"
CONNS="${CONNS:-32}"
THREADS="${THREADS:-1}"
BASE_PORT="${BASE_PORT:-18680}"
BIN="${CARGO_TARGET_DIR:-$REPO/target}/release"
P_UP=$BASE_PORT
# shellcheck source=benches/load/paths.sh
. "$REPO/benches/load/paths.sh"

need_pinned_load
if [ "${NO_BUILD:-0}" != 1 ]; then
  (cd "$REPO" && cargo build --release --bin errgate --example canned_upstream) >&2
fi

path=""
for p in "${PATHS[@]}"; do
  IFS='|' read -r name ppath _ _ <<<"$p"
  [ "$name" = "$PATH_NAME" ] && path=$ppath
done
[ -n "$path" ] || die "no path $PATH_NAME in paths.sh"

LAST=$(($(nproc) - 1))
WORK="$(mktemp -d /tmp/errgate-threads.XXXXXX)"
PIDS=()
trap stop_pids_and_clean EXIT
trap 'exit 130' INT TERM

taskset -c 0 "$BIN/examples/canned_upstream" "127.0.0.1:$P_UP" 1 >"$WORK/upstream.log" 2>&1 &
PIDS+=($!)
wait_listen "$P_UP"
# The config in a directory of its own: errgate watches it, and the access log written next to
# it would wake the watcher on every write.
mkdir "$WORK/config"
errgate_yaml $((BASE_PORT + 1)) $((BASE_PORT + 2)) "${ERRGATE_ARGS:-}" >"$WORK/config/errgate.yaml"
RUST_LOG=warn taskset -c "$LAST" "$BIN/errgate" run --config "$WORK/config/errgate.yaml" \
  --pid-file "$WORK/errgate.pid" --upgrade-sock "$WORK/errgate.sock" \
  >"${LOG_TO:-$WORK/access.log}" 2>"$WORK/errgate.log" &
E=$!
PIDS+=($E)
wait_listen $((BASE_PORT + 1))

url="http://127.0.0.1:$((BASE_PORT + 1))$path"
per_thread() { # name and nanoseconds on CPU of each thread of $E, summed by name
  for t in /proc/"$E"/task/*; do
    printf '%s\t%s\n' "$(cat "$t/comm")" "$(cut -d' ' -f1 "$t/schedstat")"
  done | awk -F'\t' '{ s[$1] += $2 } END { for (k in s) printf "%s\t%s\n", k, s[k] }' | sort
}
taskset -c 0 wrk -t1 -c"$CONNS" -d2s "$url" >/dev/null 2>&1
per_thread >"$WORK/before"
reqs=$(taskset -c 0 wrk -t1 -c"$CONNS" -d"${DURATION}s" "$url" | awk '/requests in/ { print $1 }')
per_thread >"$WORK/after"
[ "${reqs:-0}" -gt 0 ] || die "wrk completed no requests on $url"

echo "errgate CPU per request by thread  $(date -u '+%Y-%m-%d %H:%M UTC')  $(git -C "$REPO" rev-parse --short HEAD 2>/dev/null)"
echo "path $PATH_NAME ($path), $reqs requests in ${DURATION}s, wrk -c$CONNS; config extra: ${ERRGATE_ARGS:-none}; stdout: ${LOG_TO:-a file}"
join -t $'\t' "$WORK/before" "$WORK/after" | awk -F'\t' -v r="$reqs" '
  { d = ($3 - $2) / 1000 / r; name[NR] = $1; us[NR] = d; tot += d }
  END {
    printf "| %-18s | %10s | %6s |\n|%s|%s|%s|\n", "thread", "us/req", "share", "--------------------", "------------", "--------"
    for (i = 1; i <= NR; i++) if (us[i] > 0.005) printf "| %-18s | %10.2f | %5.1f%% |\n", name[i], us[i], 100 * us[i] / tot
    printf "| %-18s | %10.2f | %5.1f%% |\n", "all", tot, 100
  }'
