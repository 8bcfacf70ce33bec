#!/usr/bin/env bash
# Installs every system package hastack's tests and lab need on a Debian 12
# machine (idempotent, non-interactive): an OpenSSH server for the engine
# tests, promtool (Debian's prometheus package) for the alert rule tests,
# and the lab's own tools (lab/install-deps.sh). `npm test` runs it first
# (the `pretest` step): silent when everything is there, which needs no root;
# installing needs root, and without it the script says what is missing and stops.
# `--with-vagrant` also installs Debian's vagrant, for CI's `vagrant validate`.
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive
here=$(cd "$(dirname "$0")/.." && pwd)
packages=(openssh-server openssh-client sudo iproute2 procps prometheus)
if [ "${1:-}" = --with-vagrant ]; then packages+=(vagrant); fi
need=()
for pkg in "${packages[@]}"; do
  dpkg-query -W -f '${db:Status-Status}' "$pkg" 2>/dev/null | grep -qx installed || need+=("$pkg")
done
if [ ${#need[@]} -gt 0 ]; then
  if [ "$(id -u)" != 0 ]; then
    echo "install-deps.sh: the tests need ${need[*]}, and installing them needs root:" >&2
    echo "  sudo bash scripts/install-deps.sh   (or run npm test as root)" >&2
    exit 1
  fi
  echo "install-deps.sh: installing ${need[*]}"
  # Package scripts must not start daemons here (prometheus would listen on every address):
  # a temporary policy-rc.d, removed afterwards unless one was there already.
  policy=/usr/sbin/policy-rc.d
  if [ ! -e "$policy" ]; then
    printf '#!/bin/sh\nexit 101\n' > "$policy" && chmod 0755 "$policy"
    trap 'rm -f "$policy"' EXIT
  fi
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${need[@]}"
fi
# sshd's privilege separation directory (no systemd on the machine creates it).
if [ ! -d /run/sshd ]; then
  if [ "$(id -u)" != 0 ]; then echo "install-deps.sh: /run/sshd is missing; create it as root" >&2; exit 1; fi
  mkdir -p /run/sshd && chmod 0755 /run/sshd
fi
bash "$here/lab/install-deps.sh"
