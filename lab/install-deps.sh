#!/usr/bin/env bash
# Install what the lab (lab/) needs on a Debian 12 machine (as root). Idempotent and
# non-interactive: packages already present are left alone; apt-get runs only for
# the missing ones. Services of the installed packages are NOT started (the lab
# starts its own apt-cacher-ng, bound to its bridges only).
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
)

missing=()
for p in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
    missing+=("$p")
  fi
done

# Silent when everything is there (npm test runs this before every run).
if [ "${#missing[@]}" -eq 0 ]; then
  exit 0
fi
if [ "$(id -u)" != 0 ]; then
  echo "lab/install-deps.sh: the lab needs ${missing[*]}, and installing them needs root:" >&2
  echo "  sudo bash lab/install-deps.sh" >&2
  exit 1
fi

echo "lab: installing ${missing[*]}"
# Keep package scripts from starting daemons (apt-cacher-ng would listen on every
# address): a temporary policy-rc.d, removed afterwards unless one was there.
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
echo "lab: dependencies installed"
