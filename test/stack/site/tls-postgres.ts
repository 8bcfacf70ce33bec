/**
 * TLS on the PostgreSQL stack's links, seen from another lab host and from the control machine (skipped
 * when the inventory's `tls_enabled` is off): PostgreSQL refuses a client without TLS and accepts one that
 * verifies its certificate; etcd refuses plain HTTP and a TLS client without a certificate, and answers
 * root's etcdctl; Patroni's REST API refuses plain HTTP and answers HTTPS checked with the stack's CA; the
 * app's connection through HAProxy is encrypted. No password is used on the lab hosts: PostgreSQL refusing
 * before asking for one, or asking for one, is the answer looked for. Cheap: nothing is converged.
 */
import { tlsOn } from '../../../roles/stack.ts'
import { tlsFiles } from '../../../roles/tls.ts'
import { appDatabase } from './clients.ts'
import type { SiteCheck } from './context.ts'

export const tlsPostgres: SiteCheck = {
  name: 'tls-postgres: PostgreSQL, etcd and the Patroni API refuse plaintext and answer over TLS',
  destructive: false,
  async run(t, ctx) {
    const vars = ctx.stackVars()
    if (!tlsOn(vars, 'postgresql') || !tlsOn(vars, 'etcd') || !tlsOn(vars, 'patroni_api')) {
      const reason = 'tls_enabled is off in the inventory (HASTACK_SITE_TLS=off)'
      await t.test('TLS checks', { skip: reason }, async () => {})
      return
    }
    const CA = tlsFiles(vars).ca
    const [member, client] = ctx.hosts('postgres')
    const address = ctx.lab.host(member!).address
    const on = (command: string) => ctx.lab.ssh(client!, command, { timeoutMs: 20_000 })

    // -w: never prompt. Refused by pg_hba before any password is asked for; with TLS, asked for one.
    const psql = (mode: string) =>
      on(
        `psql -w -X "sslmode=${mode} sslrootcert=${CA} host=${address} port=5432 user=app dbname=app"` +
          ` -c 'select 1' 2>&1`,
      )
    const plain = await psql('disable')
    t.not(plain.code, 0, `${client} -> ${member}:5432 without TLS is refused`)
    t.match(plain.stdout, /no pg_hba\.conf entry .*no encryption/, 'by pg_hba (no line for a client without TLS)')
    const verified = await psql('verify-full')
    t.match(
      verified.stdout,
      /no password supplied/,
      'with TLS, the certificate verifies and the server asks for a password',
    )

    const etcdctl = (url: string, flags = '') =>
      on(
        `ETCDCTL_API=3 timeout 10 etcdctl --endpoints=${url} --dial-timeout=2s --command-timeout=3s` +
          ` ${flags} endpoint health 2>&1`,
      )
    t.not((await etcdctl(`http://${address}:2379`)).code, 0, 'etcd over plain http is refused')
    t.not(
      (await etcdctl(`https://${address}:2379`, `--cacert=${CA}`)).code,
      0,
      'etcd over TLS without a certificate is refused',
    )
    const root = await on(`sudo -n /usr/local/sbin/hastack-etcdctl --command-timeout=3s endpoint health 2>&1`)
    t.equal(
      root.code,
      0,
      `root's etcdctl (CA, host certificate, https endpoints) finds every member healthy: ${root.stdout}`,
    )

    const status = async (url: string, flags = '') =>
      (await on(`curl -s -o /dev/null -w '%{http_code}' --max-time 5 ${flags} ${url}`)).stdout.trim()
    t.not(await status(`http://${address}:8008/health`), '200', "Patroni's REST API over plain http is refused")
    t.equal(await status(`https://${address}:8008/health`, `--cacert ${CA}`), '200', 'and answers HTTPS, verified')

    const db = await appDatabase(ctx)
    t.teardown(() => db.end())
    const { rows } = await db.query('select ssl, version from pg_stat_ssl where pid = pg_backend_pid()')
    t.equal(rows[0]?.ssl, true, "the app's connection through HAProxy is encrypted")
    t.match(rows[0]?.version, /^TLSv1\.[23]$/, 'with TLS 1.2 or newer')
  },
}
