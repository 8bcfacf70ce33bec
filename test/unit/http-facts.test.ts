/**
 * The HTTP facts' commands (lib/facts/http.ts), which the typed `url` and `health` probes stand for: the exact
 * curl lines waitFor and etcd's health gate run live.
 */
import t from 'tap'
import { healthyCommand, urlReadyCommand } from '../../lib/facts/http.ts'
import { probeCommand } from '../../lib/facts/probes.ts'
import { waitFor } from '../../lib/tasks/index.ts'

t.test("etcd's health gate reads every member's /health with curl -f, one after another", async (t) => {
  const tls = { caFile: '/etc/hastack/tls/ca.crt', certFile: '/etc/hastack/tls/host.crt', keyFile: '/k/host.key' }
  t.equal(
    healthyCommand(['https://10.0.0.1:2379', 'https://10.0.0.2:2379'], tls),
    'curl -fsS -m 2 --cacert /etc/hastack/tls/ca.crt --cert /etc/hastack/tls/host.crt --key /k/host.key ' +
      'https://10.0.0.1:2379/health | grep -qF \'"health":"true"\' && ' +
      'curl -fsS -m 2 --cacert /etc/hastack/tls/ca.crt --cert /etc/hastack/tls/host.crt --key /k/host.key ' +
      'https://10.0.0.2:2379/health | grep -qF \'"health":"true"\'',
  )
  t.equal(
    healthyCommand(['http://10.0.0.1:2379']),
    'curl -fsS -m 2 http://10.0.0.1:2379/health | grep -qF \'"health":"true"\'',
  )
})

t.test("a URL wait's first try is a typed probe standing for the wait's own command", async (t) => {
  const wait = waitFor({ url: 'https://10.0.0.1:8008/health', caFile: '/etc/hastack/tls/ca.crt' })
  t.same(wait.probes, [{ kind: 'url', url: 'https://10.0.0.1:8008/health', caFile: '/etc/hastack/tls/ca.crt' }])
  t.equal(probeCommand(wait.probes![0]!), urlReadyCommand('https://10.0.0.1:8008/health', '/etc/hastack/tls/ca.crt'))
  t.match(probeCommand(wait.probes![0]!), /^if command -v curl >\/dev\/null 2>&1; then curl -sSL -o \/dev\/null -m 2 /)
  t.same(waitFor({ url: 'http://10.0.0.1:9090/-/ready' }).probes, [
    { kind: 'url', url: 'http://10.0.0.1:9090/-/ready' },
  ])
})
