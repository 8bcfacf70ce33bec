/**
 * Redis and Sentinel with TLS on the converged lab (the default; skipped, saying so, when the
 * inventory leaves `tls_enabled` off). Cheap, no converge: redis-cli without TLS to a Redis port and to a
 * Sentinel port gets no reply, with the one set of TLS options (redisTlsArgs) it gets PONG; then tcpdump
 * (installed on the Redis primary through the lab's apt cache) captures the Redis and Sentinel ports
 * there for a few seconds: HAProxy's checks are in the capture, neither password is, while a marker
 * sent in plaintext to the same Redis port during the same capture is found (the capture does show
 * cleartext when there is some). Secrets only ever travel on standard input and are never printed.
 */
import { randomBytes } from 'node:crypto'
import type { SiteCheck, SiteContext } from './context.ts'
import { cliEndpoint, cliScript, isError, redisTlsArgs, splitReplies, type Endpoint } from '../../../roles/redis/cli.ts'
import { redisAnswered } from '../../../playbooks/audit/tls.ts'
import { tlsOn } from '../../../roles/stack.ts'

const CAPTURE = '/tmp/hastack-tls-redis.pcap'
const CAPTURE_SECONDS = 6

/** Run redis-cli commands from a lab host (the password on standard input); the first reply's lines. */
async function ask(ctx: SiteContext, from: string, ep: Endpoint, command: string[]): Promise<string[]> {
  const r = await ctx.lab.ssh(from, 'sh -s', { stdin: cliScript(ep, [command]), timeoutMs: 20_000 })
  return splitReplies(r.stdout)[0] ?? []
}

/** Whether the capture holds any of the lines given on standard input (grep's answer only, never the match). */
async function captureHolds(ctx: SiteContext, host: string, needles: string[]): Promise<boolean> {
  const r = await ctx.lab.ssh(host, `sudo -n grep -q -a -F -f - ${CAPTURE}`, { stdin: `${needles.join('\n')}\n` })
  if (r.code > 1) throw new Error(`grep on the capture failed (exit ${r.code}): ${r.stderr.trim()}`)
  return r.code === 0
}

export const tlsRedis: SiteCheck = {
  name: 'tls-redis: Redis and Sentinel refuse plaintext, and a capture of HAProxy checks holds no password',
  destructive: false,
  async run(t, ctx) {
    const vars = ctx.stackVars()
    if (!tlsOn(vars, 'redis')) {
      // A plan of nothing with a reason: tap reports the check as skipped, saying why.
      t.plan(0, 'tls_enabled (or redis_tls) is off in the inventory (HASTACK_SITE_TLS=off)')
      return
    }
    const secrets = ctx.secrets()
    const [balancer] = ctx.hosts('haproxy')
    const address = (host: string) => ctx.lab.host(host).address
    const redisPort = Number(vars.redis_port)
    const sentinelPort = Number(vars.sentinel_port)
    const [target] = ctx.hosts('redis')
    const targets = [
      { what: 'Redis', port: redisPort, password: secrets.redis_password! },
      { what: 'Sentinel', port: sentinelPort, password: secrets.sentinel_password! },
    ]
    for (const { what, port, password } of targets) {
      const tls = cliEndpoint(vars, address(target!), port, password)
      const plain = { ...tls, tls: [] }
      const refused = await ask(ctx, balancer!, plain, ['PING'])
      t.notOk(redisAnswered(refused.join('\n')), `${what} on ${target}:${port} gives no reply without TLS`)
      t.same(await ask(ctx, balancer!, tls, ['PING']), ['PONG'], `${what} on ${target}:${port} answers over TLS`)
    }

    // The primary: HAProxy's checks reach its Redis port (and every Sentinel's), with both passwords.
    const sentinel = cliEndpoint(vars, address(target!), sentinelPort, secrets.sentinel_password!)
    const named = await ask(ctx, balancer!, sentinel, [
      'SENTINEL',
      'get-master-addr-by-name',
      String(vars.redis_master_name),
    ])
    t.notOk(isError(named), `a Sentinel names the primary: ${named[0] ?? 'no reply'}`)
    const primary = ctx.hosts('redis').find((h) => address(h) === named[0])
    if (!primary) return void t.fail(`no lab host has the primary's address ${named[0]}`)
    const sender = ctx.hosts('all').find((h) => h !== primary)!

    const install = await ctx.lab.ssh(
      primary,
      'command -v tcpdump >/dev/null || sudo -n env DEBIAN_FRONTEND=noninteractive apt-get install -y -q tcpdump',
      { timeoutMs: 180_000 },
    )
    const installed = `tcpdump is installed on ${primary} from the lab's apt cache`
    t.equal(install.code, 0, installed, install.code === 0 ? {} : { stderr: install.stderr.trim() })

    const marker = `hastack-cleartext-marker-${randomBytes(8).toString('hex')}`
    const filter = `tcp port ${redisPort} or tcp port ${sentinelPort}`
    const capture = ctx.lab.ssh(
      primary,
      `sudo -n rm -f ${CAPTURE}; sudo -n timeout ${CAPTURE_SECONDS} tcpdump -i any -U -s 0 -w ${CAPTURE} '${filter}'` +
        ' 2>/dev/null; test -s ' +
        CAPTURE,
      { timeoutMs: (CAPTURE_SECONDS + 20) * 1000 },
    )
    t.teardown(() => ctx.lab.ssh(primary, `sudo -n rm -f ${CAPTURE}`).then(() => undefined))
    // The control, in the middle of the capture: redis-cli without TLS sends AUTH <marker> in the clear.
    await new Promise((resolve) => setTimeout(resolve, 2000))
    await ask(ctx, sender, { host: address(primary), port: redisPort, password: marker, tls: [] }, ['PING'])
    t.equal((await capture).code, 0, `tcpdump captured ${CAPTURE_SECONDS} s on ${primary}`)

    for (const lb of ctx.hosts('haproxy')) {
      const count = await ctx.lab.ssh(
        primary,
        `sudo -n tcpdump -nn -r ${CAPTURE} 'src host ${address(lb)} and tcp dst port ${redisPort}' 2>/dev/null | wc -l`,
      )
      t.ok(
        Number(count.stdout.trim()) > 0,
        `the capture holds HAProxy's checks from ${lb} to Redis (${count.stdout.trim()} packets)`,
      )
    }
    t.ok(await captureHolds(ctx, primary, [marker]), 'the plaintext marker sent during the capture is found in it')
    const passwords = [secrets.redis_password!, secrets.sentinel_password!]
    t.notOk(
      await captureHolds(ctx, primary, passwords),
      'neither the Redis nor the Sentinel password is in the capture',
    )
    t.comment(`redis-cli TLS options: ${redisTlsArgs(vars).join(' ')}`)
  },
}
