# The load paths and helpers shared by run.sh, profile.sh, paired.sh and threads.sh (sourced, not run).
# name | errgate path | path on the floor, nginx, HAProxy and upstream | kind
# With ONLY="name ..." in the environment only those paths are kept.
PATHS=(
  "small|/pluralkit/small|/small|success"
  "large_1MiB|/pluralkit/large|/large|success"
  "status_error|/pluralkit/error|/error|error"
  "inband_error|/openim/inband|/inband|error"
  "inband_ok|/openim/inband-ok|/inband-ok|success"
  "inband_1MiB_ok|/openim/inband-large-ok|/inband-large-ok|success"
)
if [ -n "${ONLY:-}" ]; then
  kept=()
  for spec in "${PATHS[@]}"; do
    case " $ONLY " in *" ${spec%%|*} "*) kept+=("$spec") ;; esac
  done
  PATHS=("${kept[@]}")
fi

die() { echo "error: $*" >&2; exit 1; }

# need_pinned_load: wrk and taskset present and two CPUs, the load on one and the proxy under
# test on the other (paired.sh, threads.sh).
need_pinned_load() {
  command -v wrk >/dev/null || die "wrk is needed (apt-get install wrk)"
  command -v taskset >/dev/null || die "taskset is needed (util-linux)"
  [ "$(nproc)" -ge 2 ] || die "needs 2 CPUs (load on one, the proxy under test on the other)"
}

# errgate_yaml LISTEN_PORT ADMIN_PORT EXTRA_YAML: errgate's benchmark config on stdout, routes
# `pluralkit` (status-signalling) and `openim` (in-band) to the canned upstream on $P_UP, with
# $REPO's catalogs and $THREADS worker threads.
errgate_yaml() {
  cat <<EOF
listen: 127.0.0.1:$1
admin_listen: 127.0.0.1:$2
catalog_dir: $REPO/catalogs
threads: $THREADS
$3
routes:
  - name: pluralkit
    vendor: pluralkit
    path_prefix: /pluralkit
    upstream: http://127.0.0.1:$P_UP
  - name: openim
    vendor: openim
    path_prefix: /openim
    upstream: http://127.0.0.1:$P_UP
EOF
}

# wait_listen PORT: until something accepts on 127.0.0.1:PORT (30 s at most; then the logs in
# $WORK and exit).
wait_listen() {
  for _ in $(seq 1 300); do
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
    sleep 0.1
  done
  echo "error: nothing listens on $1; logs: $(tail -5 "$WORK"/*.log 2>/dev/null)" >&2
  exit 1
}

# stop_pids_and_clean: SIGINT to every process in PIDS (Pingora's quick shutdown), SIGKILL to
# what is left after 0.5 s, then $WORK removed. For `trap stop_pids_and_clean EXIT`.
stop_pids_and_clean() {
  local p
  for p in "${PIDS[@]}"; do kill -INT "$p" 2>/dev/null || true; done
  sleep 0.5
  for p in "${PIDS[@]}"; do kill -9 "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$WORK"
}
