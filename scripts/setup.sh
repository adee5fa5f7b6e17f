#!/usr/bin/env bash
# Idempotent set-up on Debian/Ubuntu, as root: Debian packages, then the
# virtualenv .venv (system Python, with system site-packages so Debian's
# python3-bpfcc is importable), then the project in editable mode.
# Each step runs only when its result is missing or stale.
set -euo pipefail
cd "$(dirname "$0")/.."

# (apache2-bin: Apache httpd without the service, for the HTTP differential tests;
# python3-magic: libmagic for the filemagic rule keyword)
PKGS=(python3-venv python3-bpfcc curl iputils-ping tcpreplay netsniff-ng prometheus rsyslog logrotate
      apache2-bin python3-magic openssh-client)

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

# nginx: the real HTTP server the HTTP differential tests ask (each test runs
# its own instance inside a namespace). Its package would also start the
# default site on port 80 of this host; a policy-rc.d for the install keeps
# that from starting (one already there is left as it is).
if ! command -v nginx >/dev/null 2>&1 && ! [ -x /usr/sbin/nginx ]; then
  if [ "$(id -u)" -ne 0 ]; then
    echo "setup: need root to install nginx-light" >&2
    exit 1
  fi
  echo "setup: installing nginx-light (its service is not started)"
  export DEBIAN_FRONTEND=noninteractive
  made_policy=
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d
    chmod 755 /usr/sbin/policy-rc.d
    made_policy=1
  fi
  rc=0
  { apt-get update -qq && apt-get install -y -qq --no-install-recommends nginx-light; } || rc=$?
  if [ -n "$made_policy" ]; then rm -f /usr/sbin/policy-rc.d; fi
  [ "$rc" -eq 0 ] || exit "$rc"
fi

# bcc compiles bpf/*.bpf.c at attach time against the running kernel's
# headers in /lib/modules/$(uname -r)/build. When they are missing: Debian's
# own package for this kernel if there is one; otherwise (a cloud or custom
# kernel Debian did not build) Debian's current headers for the architecture,
# linked there. An XDP/tc program uses only the stable UAPI and BPF helper
# declarations, which another recent kernel's headers provide.
KREL=$(uname -r)
KBUILD=/lib/modules/$KREL/build
if [ ! -e "$KBUILD" ]; then
  if [ "$(id -u)" -ne 0 ]; then
    echo "setup: need root to install kernel headers for $KREL" >&2
    exit 1
  fi
  export DEBIAN_FRONTEND=noninteractive
  ARCH=$(dpkg --print-architecture)
  apt-get update -qq
  if apt-cache show "linux-headers-$KREL" >/dev/null 2>&1; then
    echo "setup: installing linux-headers-$KREL"
    apt-get install -y -qq --no-install-recommends "linux-headers-$KREL"
  else
    if ! dpkg -s "linux-headers-$ARCH" >/dev/null 2>&1; then
      echo "setup: no Debian headers for the running kernel $KREL; installing linux-headers-$ARCH"
      apt-get install -y -qq --no-install-recommends "linux-headers-$ARCH"
    fi
    # Newest installed Debian headers (version sort: 6.1.0-40 after 6.1.0-9).
    hdr=$(ls -d /usr/src/linux-headers-*-"$ARCH" 2>/dev/null | sort -V | tail -n 1 || true)
    if [ -z "$hdr" ]; then
      echo "setup: no kernel headers under /usr/src: the XDP sensor cannot compile" \
           "(install linux-headers-$KREL)" >&2
      exit 1
    fi
    # Debian splits a kernel's headers in two, as its own /lib/modules links
    # do: the flavour's generated files (-$ARCH, "build") and the shared
    # source tree (-common, "source"); bcc reads both.
    common=${hdr%-"$ARCH"}-common
    [ -d "$common" ] || common=$hdr
    echo "setup: the running kernel's own headers ($KREL) are missing;" \
         "linking $hdr as $KBUILD and $common as /lib/modules/$KREL/source instead"
    mkdir -p "/lib/modules/$KREL"
    ln -sfn "$hdr" "$KBUILD"
    ln -sfn "$common" "/lib/modules/$KREL/source"
  fi
fi

if [ ! -x .venv/bin/python ]; then
  echo "setup: creating .venv from /usr/bin/python3 (with system site-packages)"
  /usr/bin/python3 -m venv --system-site-packages .venv
fi

stamp=.venv/.pakemon-installed
if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ]; then
  echo "setup: pip install -e .[dev] (and .[fast] if it installs)"
  .venv/bin/python -m pip install -q --disable-pip-version-check -e '.[dev]'
  # optional: a faster prefilter for large Snort/Suricata rule sets
  .venv/bin/python -m pip install -q --disable-pip-version-check -e '.[fast]' ||
    echo "setup: hyperscan unavailable; Suricata rules use pyahocorasick (slower, same alerts)"
  touch "$stamp"
fi
