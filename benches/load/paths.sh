# The load paths, shared by run.sh and profile.sh (sourced, not run).
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
