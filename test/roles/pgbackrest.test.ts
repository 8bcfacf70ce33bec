/**
 * The pgbackrest roles on scripted hosts: three members and a repository host of their own (or the
 * repository on a member, as in lab-small). Each host's pgbackrest.conf points the right way, only
 * the repository host holds the encryption passphrase, the SSH keys are derived from the generated
 * secret, restricted to pgbackrest in authorized_keys and never shown in a diff, host keys come from
 * the controller's pinned file; the repository host creates the stanza once, checks archiving,
 * schedules the timers and takes a first full backup only while it has none; a converged run changes
 * nothing; inconsistent inventories are refused; Patroni's dynamic configuration carries archiving.
 */
import { execFileSync, spawnSync } from 'node:child_process'
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t, { type Test } from 'tap'
import { knownHostsFilePath } from '../../lib/inventory/connection-spec.ts'
import { desiredDynamic, dynamicPatch } from '../../roles/patroni/dynamic.ts'
import { RESTORE_SCRIPT, walArchiving } from '../../roles/pgbackrest/archiving.ts'
import { pgbackrestRole } from '../../roles/pgbackrest/index.ts'
import {
  BACKUP_SCRIPT,
  DRILL_SCRIPT,
  DRILL_TIMER,
  pgbackrestRepositoryRole,
} from '../../roles/pgbackrest/repository.ts'
import { derivedKey } from '../../roles/pgbackrest/ssh-keys.ts'
import { scriptedLab, type ScriptedLab } from '../fixtures/scripted.ts'
import { stackInventory } from './stack.ts'

const CONF = '/etc/pgbackrest/pgbackrest.conf'
const SSH = '/var/lib/postgresql/.ssh'
const link = [{ name: 'link', hosts: 'postgres:backup_repo', roles: [pgbackrestRole] }]
const repository = [{ name: 'repository', hosts: 'backup_repo', roles: [pgbackrestRepositoryRole] }]
const HOST_KEY = 'AAAAC3NzaC1lZDI1NTE5AAAAIHN0YWNrLWhvc3Qta2V5LWZvci10aGUtdGVzdHMhIQ'

/** The shared stack inventory plus a backup_repo group (its own host, or a member). */
function backupInventory(repo: 'own' | 'member', vars: Record<string, unknown> = {}) {
  const doc = stackInventory(vars) as { all: { children: Record<string, unknown> } }
  doc.all.children.backup_repo = { hosts: repo === 'own' ? { bk1: { address: '10.0.0.40' } } : { db1: null } }
  return doc
}

/** A scripted lab whose controller has pinned the host keys of every host but `unpinned`. */
async function world(repo: 'own' | 'member', vars: Record<string, unknown> = {}, unpinned: string[] = []) {
  const lab = await scriptedLab(backupInventory(repo, vars))
  const lines = [...lab.inventory.hosts.values()]
    .filter((h) => !unpinned.includes(h.name))
    .map((h) => `${h.vars.address} ssh-ed25519 ${HOST_KEY}`)
  writeFileSync(knownHostsFilePath(lab.inventory.file), lines.join('\n') + '\n')
  return lab
}

/** The repository host's pgbackrest answers: info lists `backups` (grown by the backup script). */
function scriptRepository(lab: ScriptedLab, host: string) {
  const conn = lab.host(host)
  const state = { backups: 0, checks: 0, stanzas: 0 }
  conn.on(/'--stanza=hastack' stanza-create/, (_c, _o, self) => {
    state.stanzas++
    self.writeFile('/var/lib/pgbackrest/backup/hastack/backup.info', '[backrest]\n')
    self.mutated('stanza-create')
    return { stdout: '' }
  })
  conn.on(/'--stanza=hastack' check/, () => (state.checks++, { stdout: '' }))
  // As pgBackRest answers: status 0 with a backup and archived WAL, 2 ("no valid backups") before the first.
  conn.on(/'--stanza=hastack' info '?--output=json/, () => ({
    stdout: JSON.stringify([
      {
        archive: state.backups ? [{ min: '000000010000000000000001', max: '000000010000000000000008' }] : [],
        backup: Array.from({ length: state.backups }, (_, i) => ({ label: `b${i}` })),
        status: state.backups ? { code: 0, message: 'ok' } : { code: 2, message: 'no valid backups' },
      },
    ]),
  }))
  conn.on(new RegExp(`${BACKUP_SCRIPT}'? full`), (_c, _o, self) => {
    state.backups++
    self.mutated('backup')
    return { stdout: '{"type": "full"}\n' }
  })
  return state
}

const ini = (text: string | undefined) => Object.fromEntries((text ?? '').split('\n').map((l) => l.split('=', 2)))

t.test('a member reaches its own repository host over SSH; only the repository holds the passphrase', async (t) => {
  const lab = await world('own')
  t.teardown(() => lab.cleanup())
  const run = await lab.run(link)
  t.ok(run.success)
  const secret = lab.inventory.secrets.pgbackrest_ssh_secret!
  const cipher = lab.inventory.secrets.pgbackrest_cipher_pass!
  t.ok(secret && cipher, 'both secrets generated')
  const db1 = ini(lab.host('db1').readFile(CONF))
  t.same(
    [db1['repo1-host'], db1['repo1-host-user'], db1['pg1-path']],
    ['10.0.0.40', 'postgres', '/var/lib/postgresql/15/patroni'],
  )
  t.notOk(lab.host('db1').readFile(CONF)?.includes(cipher), 'no passphrase on a member')
  t.equal(db1['compress-type'], 'lz4', "a member's archive-push compresses as the repository does")
  const bk1 = ini(lab.host('bk1').readFile(CONF))
  t.equal(bk1['repo1-cipher-type'], 'aes-256-cbc')
  t.equal(bk1['repo1-cipher-pass'], cipher)
  t.same([bk1['repo1-retention-full'], bk1['repo1-retention-diff']], ['2', '6'])
  t.same([bk1['pg1-host'], bk1['pg2-host'], bk1['pg3-host']], ['10.0.0.11', '10.0.0.12', '10.0.0.13'])
  t.equal(
    lab.host('bk1').fs.get(CONF)?.type === 'file' && (lab.host('bk1').fs.get(CONF) as { mode: string }).mode,
    '0640',
  )
  const restricted = 'restrict,command="/usr/bin/pgbackrest ${SSH_ORIGINAL_COMMAND#* }" '
  t.ok(
    lab
      .host('db1')
      .readFile(`${SSH}/authorized_keys`)
      ?.includes(restricted + derivedKey(secret, 'repository').publicLine),
    "a member lets in the repository host's key, for pgbackrest only",
  )
  t.ok(
    lab
      .host('bk1')
      .readFile(`${SSH}/authorized_keys`)
      ?.includes(restricted + derivedKey(secret, 'database').publicLine),
    "the repository host lets in the members' key, for pgbackrest only",
  )
  t.equal(lab.host('db1').readFile(`${SSH}/hastack_pgbackrest`), derivedKey(secret, 'database').privateFile)
  t.equal(lab.host('bk1').readFile(`${SSH}/hastack_pgbackrest`), derivedKey(secret, 'repository').privateFile)
  t.match(lab.host('db1').readFile(`${SSH}/hastack_pgbackrest_known_hosts`), `10.0.0.40 ssh-ed25519 ${HOST_KEY}`)
  t.match(lab.host('db1').readFile(`${SSH}/config`), /Host 10\.0\.0\.40\n[^]*StrictHostKeyChecking yes/)
  t.match(lab.host('bk1').readFile(`${SSH}/config`), /Host 10\.0\.0\.11 10\.0\.0\.12 10\.0\.0\.13\n/)
  for (const h of ['db1', 'bk1'])
    t.match(
      lab.host(h).readFile(`${SSH}/config`),
      new RegExp(`ControlMaster auto\n +ControlPath ${SSH}/mux-%C\n +ControlPersist 60s\n`),
      `${h}: pgbackrest commands to a peer share one SSH connection`,
    )
  for (const h of ['db1', 'bk1']) t.same(lab.host(h).unmatched, [], `${h}: every command answered`)
})

t.test('a repository on a member lists that member first as the local pg1 and the others over SSH', async (t) => {
  const lab = await world('member')
  t.teardown(() => lab.cleanup())
  t.ok((await lab.run(link)).success)
  const db1 = ini(lab.host('db1').readFile(CONF))
  t.equal(db1['pg1-host'], undefined, 'pg1 is local')
  t.equal(db1['pg1-path'], '/var/lib/postgresql/15/patroni')
  t.same([db1['pg2-host'], db1['pg3-host']], ['10.0.0.12', '10.0.0.13'])
  t.equal(ini(lab.host('db2').readFile(CONF))['repo1-host'], '10.0.0.11')
  t.match(lab.host('db1').readFile(`${SSH}/config`), /Host 10\.0\.0\.12 10\.0\.0\.13\n/, 'db1 logs in to the others')
})

t.test('the private SSH key never shows in a --diff, and a converged run changes nothing', async (t) => {
  const lab = await world('own')
  t.teardown(() => lab.cleanup())
  const first = await lab.run(link, { diff: true })
  t.ok(first.success)
  t.ok(
    first.lines.some((l) => l.includes('repo1-host=10.0.0.40')),
    'the configuration shows in the diff',
  )
  t.notOk(
    first.lines.some((l) => l.includes('OPENSSH PRIVATE KEY')),
    'the private key does not',
  )
  const second = await lab.run(link)
  for (const h of ['db1', 'db2', 'db3', 'bk1']) t.equal(second.stats.get(h)?.changed, 0, `${h}: changed 0`)
})

t.test('a peer whose host key the controller has not pinned stops the host, naming the fix', async (t) => {
  const lab = await world('own', {}, ['bk1'])
  t.teardown(() => lab.cleanup())
  const run = await lab.run(link)
  t.notOk(run.success)
  const failure = run.tasks('db1').find((x) => x.status === 'failed')
  t.match(failure?.reason, /no pinned SSH host key of bk1 \(10\.0\.0\.40\)[^]*playbooks\/ping\.ts/)
  t.equal(lab.host('db1').readFile(`${SSH}/authorized_keys`), undefined, 'nothing of the link written')
})

t.test('the repository host creates the stanza once, checks, schedules and takes a first backup', async (t) => {
  const lab = await world('own', { pgbackrest_full_schedule: 'Sat *-*-* 03:00:00' })
  t.teardown(() => lab.cleanup())
  const state = scriptRepository(lab, 'bk1')
  const run = await lab.run([...link, ...repository])
  t.ok(run.success, run.tasks('bk1').find((x) => x.status === 'failed')?.reason ?? 'converged')
  t.same(state, { backups: 1, checks: 1, stanzas: 1 })
  const bk1 = lab.host('bk1')
  t.match(bk1.readFile('/etc/systemd/system/hastack-pgbackrest-full.timer'), /OnCalendar=Sat \*-\*-\* 03:00:00\n/)
  t.match(bk1.readFile('/etc/systemd/system/hastack-pgbackrest-full.timer'), /Unit=hastack-pgbackrest-backup@full/)
  t.match(bk1.readFile('/etc/systemd/system/hastack-pgbackrest-diff.timer'), /OnCalendar=Mon\.\.Sat /)
  for (const timer of ['full', 'diff'])
    t.same(bk1.service(`hastack-pgbackrest-${timer}.timer`).active, true, `${timer} timer started`)
  t.match(bk1.readFile(BACKUP_SCRIPT), /http:\/\/10\.0\.0\.11:8008\/replica/, 'the script asks Patroni for a standby')
  for (const script of [BACKUP_SCRIPT, DRILL_SCRIPT]) {
    const parsed = execFileSync('python3', ['-c', 'import ast, sys; ast.parse(sys.stdin.read()); print("ok")'], {
      input: bk1.readFile(script),
    })
    t.equal(parsed.toString().trim(), 'ok', `${script} is valid Python`)
    // JSON's null/true/false parse as Python names but fail when the script runs (NameError).
    t.notMatch(bk1.readFile(script), /= (null|true|false)$/m, `${script} assigns no JSON-only literal`)
  }
  const drill = ini(bk1.readFile('/etc/pgbackrest/drill.conf'))
  t.same([drill['pg1-path'], drill['pg1-port']], ['/var/lib/postgresql/hastack-drill/data', '5439'])
  bk1.resetCalls()
  const again = await lab.run([...link, ...repository])
  t.equal(again.stats.get('bk1')?.changed, 0, 'converged: changed 0')
  t.same(state, { backups: 1, checks: 1, stanzas: 1 }, 'no second stanza-create, backup or check')
  const checkTask = again.tasks('bk1').find((x) => x.name.startsWith('Ensure pgBackRest check passes'))
  t.match(checkTask?.reason, /nothing changed in this run; the stanza is sound \(WAL .*, 1 backups\)/)
  t.ok(
    bk1.commands.some((c) => /^runuser -u postgres -- pgbackrest '--stanza=hastack' info/.test(c)),
    'status read',
  )
})

t.test('after a change in the run, pgbackrest check runs again (the status read is not enough)', async (t) => {
  const lab = await world('own')
  t.teardown(() => lab.cleanup())
  const state = scriptRepository(lab, 'bk1')
  t.ok((await lab.run([...link, ...repository])).success)
  await lab.reconfigure(backupInventory('own', { pgbackrest_retention_full: 3 }))
  const changed = await lab.run([...link, ...repository])
  t.ok(changed.success)
  t.ok((changed.stats.get('bk1')?.changed ?? 0) + (changed.stats.get('db1')?.changed ?? 0) > 0, 'a setting changed')
  t.equal(state.checks, 2, 'checked again')
})

t.test('a settled run whose stanza status is not sound runs pgbackrest check', async (t) => {
  const lab = await world('own')
  t.teardown(() => lab.cleanup())
  const state = scriptRepository(lab, 'bk1')
  t.ok((await lab.run([...link, ...repository])).success)
  lab.host('bk1').on(/^runuser -u postgres -- pgbackrest '--stanza=hastack' info/, { code: 0, stdout: '[]' })
  t.ok((await lab.run([...link, ...repository])).success)
  t.equal(state.checks, 2)
})

t.test('the restore drill runs on its own timer, after the backups by default', async (t) => {
  const lab = await world('own', { pgbackrest_drill_schedule: 'Sun *-*-* 05:00:00' })
  t.teardown(() => lab.cleanup())
  scriptRepository(lab, 'bk1')
  t.ok((await lab.run([...link, ...repository])).success)
  const bk1 = lab.host('bk1')
  const timer = bk1.readFile(`/etc/systemd/system/${DRILL_TIMER}`)
  t.match(timer, /OnCalendar=Sun \*-\*-\* 05:00:00\n/)
  t.match(timer, /Unit=hastack-pgbackrest-drill\.service\n/)
  t.match(timer, /Persistent=true/, 'a drill missed while the host was off runs at boot')
  const unit = bk1.readFile('/etc/systemd/system/hastack-pgbackrest-drill.service')
  t.match(unit, new RegExp(`Type=oneshot[^]*ExecStart=${DRILL_SCRIPT}\n`), 'it runs the drill script, no canary')
  t.same([bk1.service(DRILL_TIMER).active, bk1.service(DRILL_TIMER).enabled], [true, true], 'timer started, enabled')
  t.equal(
    pgbackrestRepositoryRole.defaults.pgbackrest_drill_schedule,
    '*-*-* 03:30:00',
    'daily, after the 01:00 backups',
  )
  await t.rejects(scriptedLab(backupInventory('own', { pgbackrest_drill_schedule: 'daily\nExecStart=/bin/sh' })))
})

t.test('a second restore drill exits at once while one runs, touching nothing', async (t) => {
  const lab = await world('own')
  t.teardown(() => lab.cleanup())
  scriptRepository(lab, 'bk1')
  t.ok((await lab.run([...link, ...repository])).success)
  const dir = mkdtempSync(join(tmpdir(), 'hastack-drill-lock-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  const lock = join(dir, 'drill.lock')
  const script = join(dir, 'drill.py')
  writeFileSync(
    script,
    lab.host('bk1').readFile(DRILL_SCRIPT)!.replace('/run/lock/hastack-pgbackrest-drill.lock', lock),
  )
  // flock(1) holds the lock, as a running drill does, while the script starts.
  const second = spawnSync('flock', [lock, 'python3', script], { encoding: 'utf8', timeout: 30_000 })
  t.equal(second.status, 1, 'exit 1')
  t.match(second.stderr, /restore drill not run: another one is running/)
  t.notMatch(second.stderr, /FAILED/, 'no failure recorded: the metrics are left to the running drill')
})

t.test('check mode runs no pgbackrest check and writes nothing', async (t) => {
  const lab = await world('own')
  t.teardown(() => lab.cleanup())
  const state = scriptRepository(lab, 'bk1')
  t.ok((await lab.run([...link, ...repository], { check: true })).success)
  t.same(state, { backups: 0, checks: 0, stanzas: 0 })
  t.same(lab.host('bk1').writes, [])
})

t.test('inconsistent inventories are refused before any connection', async (t) => {
  const two = backupInventory('own') as { all: { children: Record<string, { hosts: Record<string, unknown> }> } }
  two.all.children.backup_repo!.hosts.bk2 = { address: '10.0.0.41' }
  await t.rejects(scriptedLab(two), /group backup_repo has 2 hosts \(bk1, bk2\): pgBackRest keeps one repository/)
  await t.rejects(
    scriptedLab(backupInventory('member', { pgbackrest_drill_port: 5432 })),
    /pgbackrest_drill_port must differ from postgresql_port/,
  )
  await t.rejects(scriptedLab(backupInventory('own', { pgbackrest_cipher_pass: 'has a space in it, sixteen+' })))
  await t.rejects(scriptedLab(backupInventory('own', { pgbackrest_full_schedule: 'daily; rm -rf /' })))
  await t.rejects(
    scriptedLab(backupInventory('member', { tls_enabled: true, pgbackrest_tls_port: 8008 })),
    /host db1: pgbackrest_tls_port and patroni_restapi_port are the same port \(8008\)/,
  )
  await t.rejects(scriptedLab(backupInventory('own', { pgbackrest_tls_port: 70000 })), /pgbackrest_tls_port/)
  await t.rejects(
    scriptedLab(backupInventory('own', { pgbackrest_process_max: 9 })),
    /pgbackrest_process_max/,
    "more processes than sshd's MaxSessions leaves room for on the shared connection",
  )
})

t.test("Patroni's dynamic configuration archives through pgBackRest only with a repository", async (t) => {
  const lab = await world('own')
  t.teardown(() => lab.cleanup())
  const v = lab.inventory.hosts.get('db1')!.vars
  const archiving = walArchiving(lab.inventory, v)
  t.same(archiving, {
    parameters: { archive_mode: 'on', archive_command: 'pgbackrest --stanza=hastack archive-push "%p"' },
    recovery_conf: { restore_command: `${RESTORE_SCRIPT} hastack %f "%p"` },
  })
  const without = await scriptedLab(stackInventory())
  t.teardown(() => without.cleanup())
  t.equal(walArchiving(without.inventory, without.inventory.hosts.get('db1')!.vars), undefined)
  const before = JSON.parse(JSON.stringify(desiredDynamic(v)))
  t.same(dynamicPatch(before, desiredDynamic(v, archiving)), {
    postgresql: { parameters: archiving!.parameters, recovery_conf: archiving!.recovery_conf },
  })
  t.equal(
    dynamicPatch(JSON.parse(JSON.stringify(desiredDynamic(v, archiving))), desiredDynamic(v, archiving)),
    undefined,
  )
})

t.test("every member gets the restore_command script, the repository's own host does not", async (t) => {
  const lab = await world('own')
  t.teardown(() => lab.cleanup())
  t.ok((await lab.run(link)).success)
  for (const h of ['db1', 'db2', 'db3']) {
    const entry = lab.host(h).fs.get(RESTORE_SCRIPT)
    t.equal(entry?.type === 'file' && entry.mode, '0755', `${h}: installed, executable`)
  }
  t.equal(lab.host('bk1').fs.get(RESTORE_SCRIPT), undefined, 'no PostgreSQL on bk1, no restore_command')
})

/**
 * The restore_command script as a member got it, run by sh in a scratch data directory, with a pgbackrest on
 * PATH that records its arguments and answers as the repository would (`found` holds what the archive has).
 */
async function restoreScript(t: Test, found: Record<string, string>) {
  const lab = await world('own')
  t.teardown(() => lab.cleanup())
  t.ok((await lab.run(link)).success)
  const dir = mkdtempSync(join(tmpdir(), 'hastack-restore-wal-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  const [bin, data, calls] = [join(dir, 'bin'), join(dir, 'data'), join(dir, 'calls')]
  mkdirSync(bin)
  mkdirSync(join(data, 'pg_wal'), { recursive: true })
  writeFileSync(join(dir, 'restore.sh'), lab.host('db2').readFile(RESTORE_SCRIPT)!)
  const archive = Object.entries(found)
    .map(([name, content]) => `  ${name}) printf '%s' '${content}' > "$4"; exit 0 ;;`)
    .join('\n')
  const fake = `#!/bin/sh\necho "$*" >> '${calls}'\ncase $3 in\n${archive}\nesac\nexit 1\n`
  writeFileSync(join(bin, 'pgbackrest'), fake)
  chmodSync(join(bin, 'pgbackrest'), 0o755)
  const run = (...args: string[]) => {
    const r = spawnSync('sh', [join(dir, 'restore.sh'), ...args], {
      cwd: data,
      encoding: 'utf8',
      env: { ...process.env, PATH: `${bin}:${process.env.PATH}` },
      timeout: 10_000,
    })
    return { code: r.status, stderr: r.stderr }
  }
  const asked = () => (spawnSync('cat', [calls], { encoding: 'utf8' }).stdout ?? '').trim().split('\n').filter(Boolean)
  const read = (path: string) => readFileSync(join(data, path), 'utf8')
  return {
    data,
    run,
    asked,
    read,
    local: (name: string, text: string) => writeFileSync(join(data, 'pg_wal', name), text),
  }
}

t.test('the restore script gives the history file pg_wal holds without asking the repository', async (t) => {
  const s = await restoreScript(t, { '00000003.history': 'the archive copy\n' })
  s.local('00000003.history', '2\t0/5000000\tno recovery target specified\n')
  t.equal(s.run('hastack', '00000003.history', 'pg_wal/RECOVERYHISTORY').code, 0)
  t.equal(s.read('pg_wal/RECOVERYHISTORY'), '2\t0/5000000\tno recovery target specified\n', "the server's own copy")
  t.same(s.asked(), [], 'pgBackRest not run')
})

t.test(
  'the restore script asks the repository for a history file pg_wal lacks, as for the next timeline',
  async (t) => {
    const s = await restoreScript(t, { '00000004.history': 'taken by another server\n' })
    t.equal(s.run('hastack', '00000005.history', 'pg_wal/RECOVERYHISTORY').code, 1, 'not in the archive: exit 1')
    t.equal(s.run('hastack', '00000004.history', 'pg_wal/RECOVERYHISTORY').code, 0, 'in the archive: found')
    t.equal(s.read('pg_wal/RECOVERYHISTORY'), 'taken by another server\n')
    t.same(s.asked(), [
      '--stanza=hastack archive-get 00000005.history pg_wal/RECOVERYHISTORY',
      '--stanza=hastack archive-get 00000004.history pg_wal/RECOVERYHISTORY',
    ])
  },
)

t.test('the restore script asks the repository for every WAL segment, even one pg_wal holds in part', async (t) => {
  const segment = '000000030000000000000007'
  const s = await restoreScript(t, { [segment]: 'the whole segment' })
  s.local(segment, 'the streamed part')
  t.equal(s.run('hastack', segment, 'pg_wal/RECOVERYXLOG').code, 0)
  t.equal(s.read('pg_wal/RECOVERYXLOG'), 'the whole segment', "the archive's copy, not pg_wal's")
  t.same(s.asked(), [`--stanza=hastack archive-get ${segment} pg_wal/RECOVERYXLOG`])
})

t.test("the restore script says timeline 1's history file does not exist without asking", async (t) => {
  const s = await restoreScript(t, {})
  t.equal(s.run('hastack', '00000001.history', 'pg_wal/RECOVERYHISTORY').code, 1)
  t.same(s.asked(), [], 'pgBackRest not run')
})

t.test('the restore script refuses a call without stanza, file and destination with exit 2', async (t) => {
  const s = await restoreScript(t, {})
  const r = s.run('00000003.history', 'pg_wal/RECOVERYHISTORY')
  t.equal(r.code, 2)
  t.match(r.stderr, /usage: .* STANZA FILE DESTINATION/)
  t.same(s.asked(), [])
})

/** Every value of `key` in a pgbackrest.conf, in order (a hash option such as tls-server-auth repeats). */
const valuesOf = (text: string | undefined, key: string) =>
  (text ?? '')
    .split('\n')
    .filter((l) => l.startsWith(`${key}=`))
    .map((l) => l.slice(key.length + 1))

/** TLS as most inventories have it: `tls_enabled` unset, on by default (the role tests' stack sets it false). */
const TLS = { tls_enabled: undefined }
const POSTGRES_TLS = '/etc/hastack/tls/postgres'

/**
 * The repository host as it answers the TLS server's tasks: postgres and its groups (usermod adds to them),
 * the server's port open while its unit runs, and the certificate it presents (`presented.serial`, the one on
 * disk until a test says otherwise).
 */
function answerTlsServer(lab: ScriptedLab, host: string) {
  const conn = lab.host(host)
  const groups = new Set(['postgres'])
  const presented = { serial: 'CURRENT', restarts: 0 }
  conn.on(/^getent passwd postgres && id -nG postgres$/, () => ({
    stdout: `postgres:x:104:110::/var/lib/postgresql:/bin/bash\n${[...groups].join(' ')}\n`,
  }))
  conn.on(/^usermod --append --groups (\S+) postgres$/, (command, _o, c) => {
    for (const g of command.split(' ')[3]!.split(',')) groups.add(g)
    c.mutated(command)
    return {}
  })
  conn.on(/exec 3<>\/dev\/tcp\/[\d.]+\/8432/, (_c, _o, c) => ({ code: c.service('pgbackrest').active ? 0 : 1 }))
  conn.on(/openssl s_client/, () => ({ stdout: `serial=CURRENT\nserial=${presented.serial}\n` }))
  conn.on(/^systemctl restart pgbackrest$/, (command, _o, c) => {
    presented.serial = 'CURRENT'
    presented.restarts++
    c.mutated(command)
    return {}
  })
  return { groups, presented }
}

t.test(
  "with pgbackrest_tls a member reaches the repository host's TLS server with its client certificate",
  async (t) => {
    const lab = await world('own', TLS)
    t.teardown(() => lab.cleanup())
    const server = answerTlsServer(lab, 'bk1')
    t.ok((await lab.run(link)).success)
    const db2 = ini(lab.host('db2').readFile(CONF))
    t.same(
      [db2['repo1-host'], db2['repo1-host-type'], db2['repo1-host-port']],
      ['bk1', 'tls', '8432'],
      "by the repository host's name: pgBackRest 2.45 checks a server certificate's DNS names only",
    )
    t.same(
      [db2['repo1-host-ca-file'], db2['repo1-host-cert-file'], db2['repo1-host-key-file']],
      [`${POSTGRES_TLS}/ca.crt`, `${POSTGRES_TLS}/pgbackrest-client.crt`, `${POSTGRES_TLS}/host.key`],
    )
    t.equal(db2['repo1-host-user'], undefined, 'no SSH user')
    const bk1 = lab.host('bk1').readFile(CONF)
    const options = ini(bk1)
    t.same(
      [options['tls-server-address'], options['tls-server-port'], options['tls-server-cert-file']],
      ['10.0.0.40', '8432', `${POSTGRES_TLS}/host.crt`],
      "on the repository host's address only, with postgres's copy of its certificate",
    )
    t.same(
      [options['tls-server-key-file'], options['tls-server-ca-file']],
      [`${POSTGRES_TLS}/host.key`, `${POSTGRES_TLS}/ca.crt`],
    )
    t.same(
      valuesOf(bk1, 'tls-server-auth'),
      ['db1=hastack', 'db2=hastack', 'db3=hastack'],
      'each member, the stanza only',
    )
    t.same([lab.host('bk1').service('pgbackrest').active, lab.host('bk1').service('pgbackrest').enabled], [true, true])
    t.same(
      [lab.host('db2').service('pgbackrest').active, lab.host('db2').service('pgbackrest').enabled],
      [false, false],
    )
    t.ok(server.groups.has('hastack-tls-postgres'), "the server's user reads postgres's copy of the key")
    t.match(lab.host('bk1').readFile(CONF), /pg2-host=10\.0\.0\.12\n/, 'backups still reach the members over SSH')
    for (const h of ['db2', 'bk1']) t.same(lab.host(h).unmatched, [], `${h}: every command answered`)
    const again = await lab.run(link)
    for (const h of ['db1', 'db2', 'db3', 'bk1']) t.equal(again.stats.get(h)?.changed, 0, `${h}: second run, changed 0`)
  },
)

t.test('a repository on a member authorizes only the other members, and serves itself locally', async (t) => {
  const lab = await world('member', TLS)
  t.teardown(() => lab.cleanup())
  answerTlsServer(lab, 'db1')
  t.ok((await lab.run(link)).success)
  t.same(valuesOf(lab.host('db1').readFile(CONF), 'tls-server-auth'), ['db2=hastack', 'db3=hastack'])
  t.equal(ini(lab.host('db1').readFile(CONF))['repo1-host'], undefined, 'its repository is local')
  t.equal(ini(lab.host('db3').readFile(CONF))['repo1-host'], 'db1')
})

t.test(
  'a changed setting restarts the server, and so does a renewed certificate it does not present yet',
  async (t) => {
    const lab = await world('own', TLS)
    t.teardown(() => lab.cleanup())
    const server = answerTlsServer(lab, 'bk1')
    t.ok((await lab.run(link)).success)
    const first = server.presented.restarts
    await lab.reconfigure(backupInventory('own', { ...TLS, pgbackrest_retention_full: 3 }))
    t.ok((await lab.run(link)).success)
    t.equal(server.presented.restarts, first + 1, 'the new retention: one restart')
    server.presented.serial = 'BEFORE-RENEWAL'
    const renewed = await lab.run(link)
    t.ok(renewed.success, renewed.tasks('bk1').find((x) => x.status === 'failed')?.reason ?? 'converged')
    const task = renewed.tasks('bk1').find((x) => x.name.startsWith("Ensure pgBackRest's TLS server presents"))
    t.match(task?.reason, /presents certificate BEFORE-RENEWAL, the renewed one on disk is CURRENT: a restart/)
    t.equal(server.presented.restarts, first + 2, 'the renewal: one restart')
    t.equal((await lab.run(link)).stats.get('bk1')?.changed, 0, 'then nothing to do')
  },
)

t.test('with pgbackrest_tls false the members keep SSH and no server runs', async (t) => {
  const lab = await world('own', { ...TLS, pgbackrest_tls: false })
  t.teardown(() => lab.cleanup())
  t.ok((await lab.run(link)).success)
  const db2 = ini(lab.host('db2').readFile(CONF))
  t.same([db2['repo1-host'], db2['repo1-host-user'], db2['repo1-host-type']], ['10.0.0.40', 'postgres', undefined])
  t.same(valuesOf(lab.host('bk1').readFile(CONF), 'tls-server-auth'), [])
  t.same([lab.host('bk1').service('pgbackrest').active, lab.host('bk1').service('pgbackrest').enabled], [false, false])
})
