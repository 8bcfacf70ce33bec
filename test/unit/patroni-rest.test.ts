/**
 * Patroni's REST credentials go only to the inventory's members, never to an api_url read from the DCS; a read
 * without credentials is one command line (a probe) that names only the URL and the CA.
 */
import { httpGetCommand } from '../../lib/facts/http.ts'
import t from 'tap'
import type { HostRun, Inventory, RunOptions } from '../../lib/types.ts'
import { inventoryApis, memberApi, restGetProbe, restResponse, type PatroniMember } from '../../roles/patroni/rest.ts'
import { probeCommand } from '../../lib/facts/probes.ts'
import { rollingRestartTask } from '../../roles/patroni/dynamic.ts'

const ADDRESSES: Record<string, string> = { db1: '10.0.0.11', db2: '10.0.0.12' }
const inventory = {
  hosts: new Map(
    Object.entries(ADDRESSES).map(([name, address]) => [name, { vars: { address, patroni_restapi_port: 8008 } }]),
  ),
  groups: new Map([['postgres', {}]]),
  groupHosts: (g: string) => (g === 'postgres' ? Object.keys(ADDRESSES) : []),
} as unknown as Inventory
const forged = 'http://203.0.113.9:8008/patroni'

t.test('a member is reached at its inventory address whatever api_url the DCS holds', async (t) => {
  const apis = inventoryApis(inventory, 'postgres')
  const published = { role: 'replica', state: 'streaming', host: '203.0.113.9', api_url: forged }
  t.equal(memberApi(apis, { name: 'db2', ...published }), 'http://10.0.0.12:8008')
  t.throws(() => memberApi(apis, { name: 'intruder', ...published }), /member intruder is not in the inventory/)
})

t.test('the rolling restart posts with credentials to inventory addresses only', async (t) => {
  const members: PatroniMember[] = [
    { name: 'db1', role: 'leader', state: 'running', host: '10.0.0.11', api_url: 'http://10.0.0.11:8008/patroni' },
    { name: 'db2', role: 'replica', state: 'streaming', host: '203.0.113.9', api_url: forged, pending_restart: true },
  ]
  const calls: { url: string; method: string; auth: boolean }[] = []
  const h = {
    check: false,
    vars: { patroni_loop_wait: 0 },
    log: () => {},
    async query(command: string | string[], options?: RunOptions) {
      // A call with its curl config on stdin (rest), or a GET on the command line (httpGetCommand, the first read).
      const config = String(options?.stdin ?? `url = "${/--url (\S+)$/.exec(String(command))?.[1]}"\nrequest = "GET"`)
      const url = /^url = "([^"]*)"/m.exec(config)![1]!
      const method = /^request = "([^"]*)"/m.exec(config)![1]!
      calls.push({ url, method, auth: /^user = /m.test(config) })
      if (method === 'POST' && url.endsWith('/restart')) members[1]!.pending_restart = false
      const body = method === 'GET' ? JSON.stringify({ members }) : '{}'
      return { code: 0, stdout: `${body}\n200`, stderr: '', durationMs: 0 }
    },
  } as unknown as HostRun
  const auth = { user: 'patroni', password: 'rest-password-0123456789' }
  const api = { base: 'http://10.0.0.11:8008', auth, members: inventoryApis(inventory, 'postgres') }
  const conn = { run: (command: string, options?: RunOptions) => h.query(command, options) }
  const plan = await rollingRestartTask(h, api, false).check({ conn } as never)
  t.equal(plan.change, true)
  if (plan.change) await plan.apply()
  const withCredentials = calls.filter((c) => c.auth)
  t.same(withCredentials, [{ url: 'http://10.0.0.12:8008/restart', method: 'POST', auth: true }])
  t.notOk(
    calls.some((c) => c.url.includes('203.0.113.9')),
    'nothing at all goes to the address from the DCS',
  )
})

t.test('a read without credentials is one command line naming the URL and, over HTTPS, the CA', async (t) => {
  t.equal(
    httpGetCommand('https://10.0.0.11:8008/cluster', '/etc/hastack/tls/ca.crt'),
    "curl -sS -m 10 --cacert /etc/hastack/tls/ca.crt -w '\\n%{http_code}' --url https://10.0.0.11:8008/cluster",
  )
  t.equal(
    httpGetCommand('http://10.0.0.11:8008/primary'),
    "curl -sS -m 10 -w '\\n%{http_code}' --url http://10.0.0.11:8008/primary",
  )
  t.throws(() => httpGetCommand('https://10.0.0.11:8008/primary'), /needs the CA file/)
  t.same(restResponse('{"role":"primary"}\n200'), { status: 200, body: '{"role":"primary"}' })
  t.same(restResponse('\n000'), { status: 0, body: '' }, 'no answer')
})

t.test('a read without credentials is asked as a typed probe standing for the same command line', async (t) => {
  for (const [url, ca] of [
    ['https://10.0.0.11:8008/cluster', '/etc/hastack/tls/ca.crt'],
    ['http://10.0.0.11:8008/primary', undefined],
  ] as const)
    t.equal(probeCommand(restGetProbe(url, ca)), httpGetCommand(url, ca), url)
  t.throws(() => restGetProbe('https://10.0.0.11:8008/primary'), /needs the CA file/)
})
