#!/usr/bin/env bash
# install-deps.sh - install the Debian packages autodata needs, only those missing.
# Idempotent: a second run installs nothing and prints nothing but a summary line.
set -euo pipefail

# Build and runtime libraries, fuzzing toolchain, clang-format (`make format-check`), and
# the tools the end-to-end tests use (curl, sqlite3, python3 for JSON checks).
PKGS=(
  build-essential pkg-config
  libcurl4-openssl-dev libjansson-dev libyaml-dev libsqlite3-dev sqlite3
  libxxhash-dev libzstd-dev libcriterion-dev libpq-dev
  clang libclang-rt-14-dev clang-format
  curl python3
)
# `make test` (AUTODATA_TEST=1) also needs Chromium: tests/e2e/t_report.sh opens the HTML
# report in headless Chromium.
# It also runs the store suite and e2e tests against a throwaway PostgreSQL server
# (scripts/pg-test-server.sh), from Debian's postgresql package.
if [ "${AUTODATA_TEST:-0}" = 1 ]; then PKGS+=(chromium postgresql); fi
# `make bench` also needs Node.js + npm for the openai npm peer.
if [ "${AUTODATA_BENCH:-0}" = 1 ]; then PKGS+=(nodejs npm); fi
# ... and numpy for the Python peer of bench/analysis (Debian's python3).
if [ "${AUTODATA_BENCH:-0}" = 1 ]; then PKGS+=(python3-numpy); fi

missing=()
for p in "${PKGS[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done

if [ ${#missing[@]} -eq 0 ]; then
  echo "install-deps: all ${#PKGS[@]} packages present"
  exit 0
fi

# Node/npm may already be present outside dpkg (e.g. a distro image); accept that.
if [ "${AUTODATA_BENCH:-0}" = 1 ] && command -v node >/dev/null && command -v npm >/dev/null; then
  filtered=()
  for p in "${missing[@]}"; do
    case "$p" in nodejs|npm) ;; *) filtered+=("$p");; esac
  done
  missing=("${filtered[@]+"${filtered[@]}"}")
  [ ${#missing[@]} -eq 0 ] && { echo "install-deps: all packages present"; exit 0; }
fi

SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
echo "install-deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
echo "install-deps: done"
