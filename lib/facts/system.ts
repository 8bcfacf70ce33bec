/**
 * System facts, gathered once per host at the start of a run with a single
 * command: OS and release, architecture, CPUs, memory, addresses, hostname, the address this run's SSH
 * connection comes from as the host sees it, and the fingerprints of the secrets the host was given
 * (fingerprints.ts).
 */
import type { Connection, Facts } from '../types.ts'
import { IPV4 } from '../inventory/formats.ts'
import { FINGERPRINT_FILE, fingerprintFactScript, parseFingerprints } from './fingerprints.ts'

const script = (fingerprintFile: string) =>
  [
    'echo "hostname=$(hostname)"',
    'echo "fqdn=$(hostname -f 2>/dev/null || hostname)"',
    'echo "arch=$(uname -m)"',
    'echo "kernel=$(uname -r)"',
    'echo "cpus=$(nproc)"',
    `echo "memkb=$(awk '/^MemTotal:/ {print $2}' /proc/meminfo)"`,
    'echo "pid1=$(cat /proc/1/comm 2>/dev/null)"',
    '. /etc/os-release 2>/dev/null; echo "os_id=$ID"; echo "os_version=$VERSION_ID"; echo "os_codename=$VERSION_CODENAME"; echo "os_pretty=$PRETTY_NAME"',
    `ip -o -4 addr show scope global 2>/dev/null | awk '{print "addr=" $2 " " $4}'`,
    // sshd's SSH_CONNECTION: the script runs on its own channel without sudo (which would clear the variable).
    'echo "control=${SSH_CONNECTION%% *}"',
    `ip -4 route get 1.1.1.1 2>/dev/null | awk '{for (i=1;i<NF;i++) if ($i=="src") print "default=" $(i+1)}' | head -n1`,
    fingerprintFactScript(fingerprintFile),
  ].join('; ')

/** Parse the key=value lines printed by the gathering script. */
export function parseFacts(output: string): Facts {
  const one: Record<string, string> = {}
  const ipv4: Record<string, string[]> = {}
  const fingerprintLines: string[] = []
  for (const line of output.split('\n')) {
    const eq = line.indexOf('=')
    if (eq < 0) continue
    const key = line.slice(0, eq)
    const value = line.slice(eq + 1).trim()
    if (key === 'addr') {
      const [iface, cidr] = value.split(' ')
      if (iface && cidr) (ipv4[iface] ??= []).push(cidr.split('/')[0]!)
    } else if (key === 'fp') fingerprintLines.push(value)
    else one[key] = value
  }
  return {
    hostname: one.hostname ?? '',
    fqdn: one.fqdn ?? one.hostname ?? '',
    os: {
      id: one.os_id ?? '',
      versionId: one.os_version ?? '',
      codename: one.os_codename ?? '',
      prettyName: one.os_pretty ?? '',
    },
    arch: one.arch ?? '',
    kernel: one.kernel ?? '',
    cpus: Number(one.cpus) || 1,
    memoryMb: Math.round((Number(one.memkb) || 0) / 1024),
    ipv4,
    defaultIpv4: one.default || undefined,
    controlAddress: one.control && IPV4.test(one.control) ? one.control : undefined,
    systemd: one.pid1 === 'systemd',
    secretFingerprints: one.fp_unreadable ? undefined : parseFingerprints(fingerprintLines),
  }
}

/** Gather the facts of one host in one round trip. The route lookup sends no traffic. */
export async function gatherFacts(conn: Connection, fingerprintFile = FINGERPRINT_FILE): Promise<Facts> {
  const result = await conn.run(script(fingerprintFile), { sudo: false, check: true, timeoutMs: 30_000 })
  return parseFacts(result.stdout)
}
