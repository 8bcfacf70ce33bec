/**
 * The shared base root file system of every lab host: a minimal Debian 12 built once
 * with debootstrap, prepared like a cloud image (a `hastack` login user with
 * passwordless sudo, units that cannot work in a container masked, no SSH host keys
 * so that every host makes its own), and reused by every lab instance. It lives
 * outside the repository in `/var/lib/hastack-lab/base-<recipe hash>/`, so it
 * survives clean clones; a change of the recipe below builds a new one.
 */
import { createHash } from 'node:crypto'
import { existsSync, mkdirSync, readdirSync, rmSync, writeFileSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { $ } from 'zx'
import { acquirePidLock } from '../lib/play/run-lock.ts'

export const LAB_ROOT = process.env.HASTACK_LAB_ROOT ?? '/var/lib/hastack-lab'

/** Everything that decides the base's content. Its hash names the base directory. */
export const BASE_RECIPE = {
  suite: 'bookworm',
  mirror: 'http://deb.debian.org/debian',
  variant: 'minbase',
  include: [
    'systemd',
    'systemd-sysv',
    'dbus',
    'openssh-server',
    'iproute2',
    'python3',
    'ca-certificates',
    'sudo',
    'iputils-ping',
    'procps',
    'less',
    'netbase',
  ],
  /** Runs inside the new root with chroot, once, after debootstrap. */
  prepare: String.raw`
set -eu
cat > /etc/apt/sources.list <<'SRC'
deb http://deb.debian.org/debian bookworm main
deb http://deb.debian.org/debian bookworm-updates main
deb http://deb.debian.org/debian-security bookworm-security main
SRC
useradd --create-home --shell /bin/bash --groups sudo hastack
passwd --lock hastack >/dev/null
echo 'hastack ALL=(ALL) NOPASSWD:ALL' > /etc/sudoers.d/hastack
chmod 0440 /etc/sudoers.d/hastack
install -d -m 0700 -o hastack -g hastack /home/hastack/.ssh
install -d -m 0700 /root/.ssh
cat > /etc/ssh/sshd_config.d/hastack-lab.conf <<'SSHD'
# hastack lab: key logins only, no reverse DNS (the hosts have no resolver)
PasswordAuthentication no
KbdInteractiveAuthentication no
PermitRootLogin prohibit-password
UseDNS no
SSHD
rm -f /etc/ssh/ssh_host_*
# Every host gets its own machine id, written by the lab before its first boot.
: > /etc/machine-id
rm -f /var/lib/dbus/machine-id
# Units that cannot work in a container or only slow the boot down.
for u in apt-daily.timer apt-daily-upgrade.timer e2scrub_all.timer e2scrub_reap.service \
         fstrim.timer systemd-journald-audit.socket dpkg-db-backup.timer \
         systemd-networkd-wait-online.service getty@tty1.service \
         sys-kernel-debug.mount sys-kernel-tracing.mount sys-kernel-config.mount \
         systemd-sysusers.service nvmf-autoconnect.service nvmefc-boot-connections.service; do
  ln -sf /dev/null "/etc/systemd/system/$u"
done
apt-get clean
rm -rf /var/lib/apt/lists/*
`,
}

export function recipeHash(): string {
  return createHash('sha256').update(JSON.stringify(BASE_RECIPE)).digest('hex').slice(0, 12)
}

export function basePath(): string {
  return join(LAB_ROOT, `base-${recipeHash()}`)
}

/** Run `fn` holding the lock file `path` (one builder at a time; a dead holder's lock is taken over). */
async function withLock<T>(path: string, timeoutMs: number, fn: () => Promise<T>): Promise<T> {
  const lock = await acquirePidLock(path, {
    command: 'building the lab base root',
    waitSeconds: timeoutMs / 1000,
    hint: 'another lab is building the base root',
    warn: () => {},
  })
  try {
    return await fn()
  } finally {
    lock.release()
  }
}

/**
 * Make sure the base for the current recipe exists; build it when missing (about a
 * minute and 330 MB). Returns its path and whether it was built now. Bases of older
 * recipes not used by any lab instance are removed.
 */
export async function ensureBase(
  log: (m: string) => void = () => {},
): Promise<{ path: string; built: boolean; ms: number }> {
  const t0 = Date.now()
  const path = basePath()
  mkdirSync(LAB_ROOT, { recursive: true })
  if (existsSync(join(path, '.hastack-base-ok'))) return { path, built: false, ms: 0 }
  return withLock(join(LAB_ROOT, '.base-build.lock'), 20 * 60_000, async () => {
    if (existsSync(join(path, '.hastack-base-ok'))) return { path, built: false, ms: Date.now() - t0 }
    const tmp = `${path}.tmp`
    rmSync(tmp, { recursive: true, force: true })
    log(`building the base root ${path} (debootstrap ${BASE_RECIPE.suite}, about a minute)`)
    const r = BASE_RECIPE
    const out = await $({
      quiet: true,
      nothrow: true,
      timeout: 15 * 60_000,
    })`debootstrap --variant=${r.variant} --include=${r.include.join(',')} ${r.suite} ${tmp} ${r.mirror}`
    if (out.exitCode !== 0) {
      throw new Error(
        `debootstrap failed (exit ${out.exitCode}):\n${(out.stderr + out.stdout).split('\n').slice(-15).join('\n')}`,
      )
    }
    const prep = await $({
      quiet: true,
      nothrow: true,
      timeout: 5 * 60_000,
      input: r.prepare,
    })`chroot ${tmp} /bin/sh -s`
    if (prep.exitCode !== 0) throw new Error(`preparing the base failed:\n${prep.stderr}`)
    writeFileSync(join(tmp, '.hastack-base-ok'), `${new Date().toISOString()}\n`)
    rmSync(path, { recursive: true, force: true })
    await $({ quiet: true })`mv ${tmp} ${path}`
    removeOldBases()
    return { path, built: true, ms: Date.now() - t0 }
  })
}

/** Remove bases of older recipes that no lab instance's state still names. */
export function removeOldBases(): void {
  if (!existsSync(LAB_ROOT)) return
  const current = basePath()
  for (const entry of readdirSync(LAB_ROOT)) {
    const dir = join(LAB_ROOT, entry)
    if (!/^base-[0-9a-f]{12}$/.test(entry) || dir === current) continue
    if (!baseInUse(dir)) rmSync(dir, { recursive: true, force: true })
  }
}

function baseInUse(base: string): boolean {
  for (const entry of readdirSync(LAB_ROOT)) {
    const f = join(LAB_ROOT, entry, 'base')
    try {
      if (readFileSync(f, 'utf8').trim() === base) return true
    } catch {}
  }
  return false
}
