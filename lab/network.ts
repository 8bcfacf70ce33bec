/**
 * The lab's network and addresses: each instance's /24 (clear of every route, address
 * and other instance on the machine), its bridge with the guard that routes nothing in
 * or out, each host's namespace and veth, the nftables rules of partitions and the tc
 * qdiscs of slow links, and probes of a host's ports from the machine.
 */
import { createHash } from 'node:crypto'
import { existsSync, readFileSync, readdirSync } from 'node:fs'
import { connect } from 'node:net'
import { join } from 'node:path'
import { gunzipSync } from 'node:zlib'
import { $ } from 'zx'
import { LAB_ROOT } from './base.ts'
import { readJson, type LabHost, type LabInstance } from './instance.ts'

export { tcpOpen } from './acng.ts'

const quiet = $({ quiet: true })
const q = $({ quiet: true, nothrow: true, timeout: 60_000 })

function hashByte(name: string, salt: number): number {
  return createHash('sha256').update(`${name}/${salt}`).digest()[0]!
}

function ipToInt(ip: string): number {
  return ip.split('.').reduce((a, b) => a * 256 + Number(b), 0)
}

function overlaps(a: string, b: string): boolean {
  const [an, al] = a.split('/')
  const [bn, bl] = b.split('/')
  const len = Math.min(Number(al ?? 32), Number(bl ?? 32))
  if (len === 0) return false // the default route overlaps everything; not a collision
  const mask = len === 32 ? 0xffffffff : ~(0xffffffff >>> len) >>> 0
  return (ipToInt(an!) & mask) >>> 0 === (ipToInt(bn!) & mask) >>> 0
}

/** Pick the instance's /24: deterministic per name, clear of every route and other lab. */
export async function chooseSubnet(name: string): Promise<string> {
  const routes = JSON.parse((await quiet`ip -j -4 route show table all`).stdout) as { dst: string }[]
  type Addresses = { addr_info: { local: string; prefixlen: number }[] }[]
  const addrs = JSON.parse((await quiet`ip -j -4 addr`).stdout) as Addresses
  const taken = [
    ...routes.map((r) => r.dst).filter((d) => d && d !== 'default'),
    ...addrs.flatMap((a) => a.addr_info.map((i) => `${i.local}/${i.prefixlen}`)),
  ]
  for (const entry of existsSync(LAB_ROOT) ? readdirSync(LAB_ROOT) : []) {
    const other = readJson<LabInstance>(join(LAB_ROOT, entry, 'instance.json'))
    if (other && other.name !== name) taken.push(other.subnet)
  }
  for (let salt = 0; salt < 64; salt++) {
    const third = 1 + (hashByte(name, salt) % 250)
    const subnet = `10.213.${third}.0/24`
    if (!taken.some((t) => overlaps(t, subnet))) return subnet
  }
  throw new Error('no free /24 in 10.213.0.0/16 for the lab after 64 tries')
}

/** The instance's nftables table name (inet for the guard, bridge for partitions). */
export function nftTable(sid: string): string {
  return `hastack_lab_${sid.replace(/-/g, '_')}`
}

export async function createBridge(inst: LabInstance, sid: string): Promise<void> {
  const br = inst.bridge
  await quiet`ip link add ${br} type bridge forward_delay 0 stp_state 0`
  await quiet`ip addr add ${inst.gateway}/24 dev ${br}`
  await quiet`ip link set ${br} up`
  // Nothing is ever routed between the lab and any other network; partitions live
  // in the bridge table, on the machine's side where a host cannot undo them.
  const t = nftTable(sid)
  const rules = [
    `table inet ${t} {`,
    `  chain forward { type filter hook forward priority -10; policy accept;`,
    `    iifname "${br}" oifname != "${br}" drop`,
    `    oifname "${br}" iifname != "${br}" drop`,
    `  }`,
    `}`,
    `table bridge ${t} {`,
    `  chain forward { type filter hook forward priority -10; policy accept; }`,
    `}`,
  ].join('\n')
  await $({ quiet: true, input: rules })`nft -f -`
}

export async function createNetwork(inst: LabInstance, h: LabHost): Promise<void> {
  await quiet`ip netns add ${h.netns}`
  await quiet`ip link add ${h.veth} type veth peer name eth0 netns ${h.netns}`
  await quiet`ip link set ${h.veth} master ${inst.bridge} up`
  await quiet`ip -n ${h.netns} link set lo up`
  await quiet`ip -n ${h.netns} addr add ${h.address}/24 dev eth0`
  await quiet`ip -n ${h.netns} link set eth0 up`
  // A default route like a VM's (facts read the primary address from it); the
  // machine forwards nothing from the lab bridge, so nothing leaves the machine.
  await quiet`ip -n ${h.netns} route add default via ${inst.gateway}`
}

/**
 * Remove every IPv4 address of the host's eth0 but its own: the ones its services added (a keepalived
 * VIP) end with the host, as on a real machine, where they would otherwise outlive it in the namespace
 * the lab keeps and answer ARP for an address another host now holds.
 */
export async function dropAddedAddresses(h: LabHost): Promise<string[]> {
  type Addresses = { addr_info: { family: string; local: string; prefixlen: number }[] }[]
  const shown = JSON.parse((await quiet`ip -n ${h.netns} -j -4 addr show dev eth0`).stdout) as Addresses
  const added = shown.flatMap((a) => a.addr_info).filter((i) => i.local !== h.address)
  for (const i of added) await quiet`ip -n ${h.netns} addr del ${`${i.local}/${i.prefixlen}`} dev eth0`
  return added.map((i) => i.local)
}

/** Write the instance's partitions as drop rules of its bridge table (replacing the previous ones). */
export async function applyPartitions(inst: LabInstance, sid: string): Promise<void> {
  const t = nftTable(sid)
  const veth = (n: string) => `"${inst.hosts.find((h) => h.name === n)!.veth}"`
  const rules: string[] = []
  for (const [host, from] of Object.entries(inst.partitions)) {
    if (from === 'all') {
      rules.push(`iifname ${veth(host)} drop`, `oifname ${veth(host)} drop`)
    } else {
      const set = `{ ${from.map(veth).join(', ')} }`
      rules.push(`iifname ${veth(host)} oifname ${set} drop`, `iifname ${set} oifname ${veth(host)} drop`)
    }
  }
  const adds = rules.map((r) => `add rule bridge ${t} forward ${r}`)
  const script = [`flush chain bridge ${t} forward`, ...adds].join('\n')
  await $({ quiet: true, input: script })`nft -f -`
}

/** The tc qdisc arguments of a slow link: netem for a delay, tbf for a rate alone. */
export function shapingArgs(opts: { delayMs?: number; jitterMs?: number; rateKbit?: number }): string[] {
  if (opts.delayMs) {
    if (!netemAvailable()) {
      throw new Error(
        'this kernel has no sch_netem (CONFIG_NET_SCH_NETEM is not set and modules cannot be loaded), ' +
          'so `slow --delay` cannot work here; `slow --rate KBIT` (tbf) does',
      )
    }
    const args = ['netem', 'delay', `${opts.delayMs}ms`, ...(opts.jitterMs ? [`${opts.jitterMs}ms`] : [])]
    if (opts.rateKbit) args.push('rate', `${opts.rateKbit}kbit`)
    return args
  }
  if (opts.rateKbit) return ['tbf', 'rate', `${opts.rateKbit}kbit`, 'burst', '16kb', 'latency', '400ms']
  throw new Error('slow needs --delay MS or --rate KBIT')
}

/** Put the qdisc on the machine's end of the host's veth (traffic towards the host). */
export async function shapeLink(veth: string, args: string[]): Promise<void> {
  const r = await q`tc qdisc replace dev ${veth} root ${args}`
  if (r.exitCode !== 0) throw new Error(`tc failed: ${r.stderr.trim()}`)
}

export async function unshapeLink(veth: string): Promise<void> {
  await q`tc qdisc del dev ${veth} root`
}

let netemCache: boolean | undefined
/** Whether the kernel can do tc netem (built in, or a loadable module present). */
export function netemAvailable(): boolean {
  if (netemCache !== undefined) return netemCache
  let ok: boolean
  try {
    const cfg = gunzipSync(readFileSync('/proc/config.gz')).toString()
    ok = /^CONFIG_NET_SCH_NETEM=(y|m)$/m.test(cfg)
    if (/^CONFIG_NET_SCH_NETEM=m$/m.test(cfg)) {
      const rel = readFileSync('/proc/sys/kernel/osrelease', 'utf8').trim()
      ok = existsSync(`/lib/modules/${rel}`)
    }
  } catch {
    const rel = readFileSync('/proc/sys/kernel/osrelease', 'utf8').trim()
    ok = existsSync(`/lib/modules/${rel}`) || existsSync('/sys/module/sch_netem')
  }
  return (netemCache = ok)
}

/** Resolves the SSH identification line the server sends first, or null after timeoutMs. */
export function sshBanner(address: string, timeoutMs: number): Promise<string | null> {
  return new Promise((resolve) => {
    const s = connect({ host: address, port: 22 })
    let buf = ''
    const done = (v: string | null) => {
      s.destroy()
      resolve(v)
    }
    s.setTimeout(timeoutMs, () => done(null))
    s.on('data', (d) => {
      buf += d.toString('latin1')
      if (buf.includes('\n')) done(buf.split('\n')[0]!.trim())
    })
    s.once('error', () => done(null))
    s.once('close', () => done(buf ? buf.trim() : null))
  })
}
