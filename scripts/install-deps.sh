#!/usr/bin/env bash
# Installs every system package hastack's tests and lab need on a Debian 12
# machine (idempotent, non-interactive): the lab's own tools, an OpenSSH server
# for the engine tests, promtool (Debian's prometheus package) for the alert
# rule tests and Chromium for the app pages' headless browser check, all through
# the one installer lab/install-deps.sh. `npm test` runs
# it first (the `pretest` step): silent when everything is there, which needs no
# root; installing needs root, and without it the script says what is missing.
# `--with-vagrant` also installs Debian's vagrant, for CI's `vagrant validate`; `--with-pictures`
# is kept for `npm run pictures` (chromium is installed in any case).
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
extra=(openssh-server sudo prometheus chromium)
for option in "$@"; do
  case "$option" in
    --with-vagrant) extra+=(vagrant) ;;
    --with-pictures) ;; # chromium is always installed now (the app pages' browser check needs it too)
    *) echo "install-deps.sh: unknown option $option (--with-vagrant, --with-pictures)" >&2; exit 1 ;;
  esac
done
bash "$here/lab/install-deps.sh" "${extra[@]}"
# sshd's privilege separation directory (no systemd on the machine creates it).
if [ ! -d /run/sshd ]; then
  if [ "$(id -u)" != 0 ]; then echo "install-deps.sh: /run/sshd is missing; create it as root" >&2; exit 1; fi
  mkdir -p /run/sshd && chmod 0755 /run/sshd
fi
