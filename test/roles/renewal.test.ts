/**
 * A renewed host certificate reaches a running service (roles/certificates/served.ts) on scripted hosts:
 * HAProxy presenting an older certificate than the one on disk gets a hitless reload (never a restart) and
 * the run waits until it presents the new one; a second run changes nothing; a service presenting the
 * current certificate, or not answering TLS yet, is left alone; check mode reports the reload without it.
 */
import t from 'tap'
import { haproxyRole } from '../../roles/haproxy/index.ts'
import { parseSerials, serialsCommand } from '../../roles/certificates/served.ts'
import { scriptedLab, type ScriptedLab, type ScriptedConnection } from '../fixtures/scripted.ts'
import { stackInventory } from './stack.ts'

const play = [{ name: 'haproxy', hosts: 'haproxy', roles: [haproxyRole] }]
const PRESENTS = "Ensure HAProxy's stats page presents the current host certificate"
const OLD = '1A2B'
const RENEWED = '3C4D'

/**
 * A TLS stack's load balancer whose HAProxy presents `presented` until its next reload (then the renewed
 * certificate on disk); `presented: ''` is a HAProxy that does not answer TLS.
 */
async function balancer(presented: string): Promise<ScriptedLab> {
  const lab = await scriptedLab(stackInventory({ tls_enabled: true }))
  const lb1 = lab.host('lb1')
  lb1.on(/^haproxy -c /, { code: 0 })
  let reloadsAtStart: number | undefined
  lb1.on(/openssl s_client/, (command: string, _options, conn: ScriptedConnection) => {
    reloadsAtStart ??= conn.service('haproxy').reloads
    const now = conn.service('haproxy').reloads > reloadsAtStart ? RENEWED : presented
    if (command.startsWith('printf')) return { stdout: `serial=${RENEWED}\n${now ? `serial=${now}` : ''}\n` }
    return { code: now === RENEWED ? 0 : 1 }
  })
  return lab
}

t.test('the serials on disk and presented are read in one command and parsed', async (t) => {
  const endpoint = { service: 'PostgreSQL', address: '10.0.0.11', port: 5432, starttls: 'postgres' as const }
  const command = serialsCommand({ ...endpoint, certFile: '/etc/hastack/tls/host.crt' })
  t.match(command, /openssl x509 -noout -serial -in \/etc\/hastack\/tls\/host\.crt/)
  t.match(command, /openssl s_client -connect 10\.0\.0\.11:5432 -starttls postgres/)
  t.same(parseSerials('serial=1A\nserial=2B\n'), { onDisk: '1A', presented: '2B' })
  t.same(parseSerials('serial=1A\n\n'), { onDisk: '1A', presented: '' }, 'no TLS answer: nothing presented')
})

t.test(
  'HAProxy presenting an older certificate is reloaded, not restarted, then a re-run changes nothing',
  async (t) => {
    const lab = await balancer(OLD)
    t.teardown(() => lab.cleanup())
    const first = await lab.run(play)
    t.ok(first.success)
    t.ok(first.named('lb1', 'changed').includes(PRESENTS), 'the renewed certificate was picked up')
    const haproxy = lab.host('lb1').service('haproxy')
    t.equal(haproxy.restarts, 0, 'never restarted')
    t.equal(haproxy.reloads, 2, "the configuration's first reload and the certificate's")
    const again = await lab.run(play)
    t.equal(again.stats.get('lb1')?.changed, 0, 'a second run changes nothing')
    t.equal(lab.host('lb1').service('haproxy').reloads, 2)
  },
)

t.test('a HAProxy presenting the current certificate, or not answering TLS, is left alone', async (t) => {
  for (const presented of [RENEWED, '']) {
    const lab = await balancer(presented)
    t.teardown(() => lab.cleanup())
    const run = await lab.run(play)
    t.ok(run.success)
    t.notOk(run.named('lb1', 'changed').includes(PRESENTS), presented || 'no TLS answer')
    t.equal(lab.host('lb1').service('haproxy').reloads, 1, "only the new configuration's reload")
  }
})

t.test('check mode reports the pick-up and reloads nothing', async (t) => {
  const lab = await balancer(OLD)
  t.teardown(() => lab.cleanup())
  await lab.run(play)
  const lb1 = lab.host('lb1')
  const reloads = lb1.service('haproxy').reloads
  lb1.on(/openssl s_client/, { stdout: `serial=${RENEWED}\nserial=${OLD}\n` })
  const check = await lab.run(play, { check: true })
  t.ok(check.named('lb1', 'changed').includes(PRESENTS))
  t.equal(lb1.service('haproxy').reloads, reloads)
})
