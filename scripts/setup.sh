#!/usr/bin/env bash
# Idempotent set-up on Debian/Ubuntu, as root: Debian packages, then the
# virtualenv .venv (system Python, with system site-packages so Debian's
# python3-bpfcc is importable), then the project in editable mode.
# Each step runs only when its result is missing or stale.
set -euo pipefail
cd "$(dirname "$0")/.."

PKGS=(python3-venv python3-bpfcc)
missing=()
for p in "${PKGS[@]}"; do
  dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" -ne 0 ]; then
    echo "setup: need root to install Debian packages: ${missing[*]}" >&2
    exit 1
  fi
  echo "setup: installing Debian packages: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

if [ ! -x .venv/bin/python ]; then
  echo "setup: creating .venv from /usr/bin/python3 (with system site-packages)"
  /usr/bin/python3 -m venv --system-site-packages .venv
fi

stamp=.venv/.pakemon-installed
if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ]; then
  echo "setup: pip install -e .[dev]"
  .venv/bin/python -m pip install -q --disable-pip-version-check -e '.[dev]'
  touch "$stamp"
fi
