/**
 * Pure parts of the PostgreSQL HA roles, no lab needed: the dynamic
 * configuration diff (what PATCH /config sends), SCRAM verifiers (password
 * checks without sending the password), and the bootstrap state etcd is given.
 */
import t from 'tap'
import { desiredDynamic, dynamicPatch } from '../../roles/patroni/dynamic.ts'
import { scramMatches, scramVerifier } from '../../roles/patroni/scram.ts'
import { patroniRole } from '../../roles/patroni/index.ts'
import { postgresqlRole } from '../../roles/postgresql/index.ts'

const vars = { ...patroniRole.defaults, ...postgresqlRole.defaults }

t.test('the dynamic configuration equal to the inventory needs no PATCH', async (t) => {
  const current = JSON.parse(JSON.stringify(desiredDynamic(vars)))
  // Patroni stores what it was given; PostgreSQL's own spelling of booleans is equal too.
  current.postgresql.parameters.hot_standby = 'on'
  t.equal(dynamicPatch(current, desiredDynamic(vars)), undefined)
})

t.test('only the differing settings are patched', async (t) => {
  const current = JSON.parse(JSON.stringify(desiredDynamic(vars)))
  const want = desiredDynamic({
    ...vars,
    patroni_ttl: 20,
    postgresql_parameters: { ...vars.postgresql_parameters, max_connections: 300 },
  })
  t.same(dynamicPatch(current, want), { ttl: 20, postgresql: { parameters: { max_connections: 300 } } })
})

t.test('an absent boolean counts as false; a new parameter is added', async (t) => {
  const current = {
    ttl: 30,
    loop_wait: 10,
    retry_timeout: 10,
    maximum_lag_on_failover: 1048576,
    postgresql: { use_pg_rewind: true, use_slots: true, parameters: {} },
  }
  const patch = dynamicPatch(current, desiredDynamic({ ...vars, patroni_failsafe_mode: true }))
  t.equal(patch?.failsafe_mode, true)
  t.notOk('synchronous_mode' in (patch ?? {}), 'false equals absent')
  t.equal(patch?.postgresql?.parameters?.max_connections, 200)
})

t.test('SCRAM verifiers match their password only', async (t) => {
  const v = scramVerifier('s3cret-Password')
  t.match(v, /^SCRAM-SHA-256\$4096:[^$]+\$[^:]+:.+$/)
  t.ok(scramMatches(v, 's3cret-Password'))
  t.notOk(scramMatches(v, 's3cret-password'))
  t.notOk(scramMatches('md5abcdef', 's3cret-Password'), 'md5 hashes never match: the password is reset as SCRAM')
  t.notOk(scramMatches('', 'x'))
})
