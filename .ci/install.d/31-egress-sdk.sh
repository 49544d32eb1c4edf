#!/usr/bin/env bash
# PyPI `pluralkit` (with httpx) for tests/egress.rs: the unmodified SDK run through errgate's
# forward proxy. Idempotent: installs only when the import fails.
set -euo pipefail
if ! python3 -c 'import pluralkit, httpx' >/dev/null 2>&1; then
  echo "== pip install pluralkit"
  python3 -m pip install --quiet 'pluralkit==1.2.1'
fi
