#!/usr/bin/env bash
# Installs every system package hastack's tests and lab need on a Debian 12
# machine (idempotent, non-interactive): an OpenSSH server for the engine
# tests, and the lab's own tools (lab/install-deps.sh).
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive
need=()
for pkg in openssh-server openssh-client sudo iproute2 procps; do
  dpkg-query -W -f '${db:Status-Status}' "$pkg" 2>/dev/null | grep -qx installed || need+=("$pkg")
done
if [ ${#need[@]} -gt 0 ]; then
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${need[@]}"
fi
# sshd's privilege separation directory (no systemd on the machine creates it).
mkdir -p /run/sshd && chmod 0755 /run/sshd
here=$(cd "$(dirname "$0")/.." && pwd)
if [ -f "$here/lab/install-deps.sh" ]; then bash "$here/lab/install-deps.sh"; fi
