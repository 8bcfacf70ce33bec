#!/usr/bin/env bash
# Install what the lab (lab/) needs on a Debian 12 machine (as root), plus any
# packages named as arguments (scripts/install-deps.sh adds the tests' own).
# Idempotent and non-interactive: packages already present are left alone and
# apt-get runs only for the missing ones; silent when nothing is missing (npm test
# runs this before every run), which needs no root. Services of the installed
# packages are NOT started (the lab starts its own apt-cacher-ng, bound to its
# bridges only; prometheus would listen on every address).
set -euo pipefail

packages=(
  debootstrap       # builds the shared base root
  systemd-container # systemd-nspawn boots each host
  apt-cacher-ng     # the hosts' apt cache
  iproute2          # ip netns, veth, bridge, tc
  nftables          # partitions and the no-forwarding guard
  openssh-client    # ssh, ssh-keygen
  util-linux        # mount, setsid
  procps
  "$@"
)

missing=()
for p in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
    missing+=("$p")
  fi
done

if [ "${#missing[@]}" -eq 0 ]; then
  exit 0
fi
if [ "$(id -u)" != 0 ]; then
  echo "install-deps.sh: ${missing[*]} must be installed, and installing them needs root:" >&2
  echo "  sudo bash scripts/install-deps.sh   (or run npm test as root)" >&2
  exit 1
fi

echo "install-deps.sh: installing ${missing[*]}"
# Keep package scripts from starting daemons: a temporary policy-rc.d, removed
# afterwards unless one was there.
policy=/usr/sbin/policy-rc.d
own_policy=0
if [ ! -e "$policy" ]; then
  printf '#!/bin/sh\nexit 101\n' > "$policy"
  chmod 0755 "$policy"
  own_policy=1
fi
cleanup() { if [ "$own_policy" = 1 ]; then rm -f "$policy"; fi; }
trap cleanup EXIT

export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends \
  -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold "${missing[@]}"
echo "install-deps.sh: dependencies installed"
