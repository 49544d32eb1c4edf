#!/usr/bin/env bash
# The vendors' own SDKs for tests/sdk.rs: PyPI `pluralkit` and npm `microcms-js-sdk` (pinned by
# tests/sdk/node/package-lock.json). Idempotent: checks first, installs what is missing.
set -euo pipefail
cd "$(dirname "$0")/../.."

if ! python3 -c 'import pluralkit' >/dev/null 2>&1; then
  echo "== pip install pluralkit"
  python3 -m pip install --quiet 'pluralkit==1.2.1'
fi

if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
  echo "== apt-get install nodejs npm"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq nodejs npm >/dev/null
fi

if [ ! -f tests/sdk/node/node_modules/microcms-js-sdk/package.json ]; then
  echo "== npm ci (tests/sdk/node)"
  (cd tests/sdk/node && npm ci --no-audit --no-fund --loglevel=error)
fi
