/**
 * PostgreSQL roles and databases on the leader, through psql as the `postgres`
 * OS user over the local socket. Passwords are compared with, and set as,
 * SCRAM verifiers computed locally (see scram.ts); SQL that writes travels on stdin.
 * The reads a check starts with are one shell command each (`psqlReadCommand`, no secret in
 * them), declared as the task's probe, so a run of tasks reads them in one round trip.
 * psql is the server version's own binary on the server's own port: Debian's /usr/bin/psql is
 * pg_wrapper, a Perl program that costs about 20 ms of CPU a call to pick a cluster Patroni's is not
 * registered as (it would pick port 5432 whatever postgresql_port says).
 */
import type { Probe, TaskContext } from '../../lib/types.ts'
import { CommandError } from '../../lib/types.ts'
import { defineTask, noChange, type TaskOptions } from '../../lib/tasks/index.ts'
import { quote, quoteArgs } from '../../lib/connection/quote.ts'
import { scramMatches, scramVerifier } from './scram.ts'
import { pgBinDir } from '../stack.ts'

/** The local server psql talks to: its major version (for the binary) and its port (a role's validated vars). */
export interface LocalServer {
  postgresql_version?: unknown
  postgresql_port?: unknown
}

/** psql of the server's version, on its port over the socket, quiet, stopping at the first error. */
export const psqlArgv = (server: LocalServer) => [
  `${pgBinDir(server.postgresql_version)}/psql`,
  '-p',
  String(server.postgresql_port),
  '-d',
  'postgres',
  '-XAtq',
  '-v',
  'ON_ERROR_STOP=1',
]

const ident = (name: string) => `"${name.replaceAll('"', '""')}"`
const literal = (text: string) => `'${text.replaceAll("'", "''")}'`

/** Run SQL as postgres; the rows as text. */
export async function psql(ctx: TaskContext, server: LocalServer, sql: string): Promise<string> {
  const r = await ctx.conn.run(psqlArgv(server), { user: 'postgres', stdin: sql, cwd: '/' })
  if (r.code !== 0) throw new Error(`psql failed: ${r.stderr.trim().split('\n').slice(-3).join(' ')}`)
  return r.stdout.trim()
}

/** A read-only query as one root shell command (psql as postgres, from `/`): a probe a task can declare. */
export function psqlReadCommand(server: LocalServer, sql: string): string {
  return `cd / && runuser -u postgres -- ${quoteArgs(psqlArgv(server))} -c ${quote(sql)}`
}

/** The probe of a read-only query, for a task's `probes`. */
export const psqlProbe = (server: LocalServer, sql: string): Probe => ({
  kind: 'run',
  command: psqlReadCommand(server, sql),
})

/** Run a read-only query (answered from the batch when it was gathered); the rows as text. */
export async function psqlRead(ctx: TaskContext, server: LocalServer, sql: string): Promise<string> {
  try {
    // `check`: a failed answer from a batch is asked again live, for its real error.
    return (await ctx.conn.run(psqlReadCommand(server, sql), { check: true })).stdout.trim()
  } catch (error) {
    if (!(error instanceof CommandError)) throw error
    const detail = error.result.stderr.trim().split('\n').slice(-3).join(' ')
    throw new Error(`psql failed: ${detail}`, { cause: error })
  }
}

export interface PgRoleArgs extends TaskOptions {
  /** The leader's own server, where the role is read and written. */
  server: LocalServer
  role: string
  password: string
  /** Attributes for CREATE ROLE, e.g. "LOGIN REPLICATION". */
  attrs: string
}

/** The stored password (verifier, or '') of each role that exists, by name, from `storedPasswordsSql`'s rows. */
export function storedPasswords(rows: string): Map<string, string> {
  const stored = new Map<string, string>()
  for (const row of rows.split('\n').filter(Boolean)) {
    // name|verifier: a verifier holds no '|', a name might.
    const cut = row.lastIndexOf('|')
    if (cut > 0) stored.set(row.slice(0, cut), row.slice(cut + 1))
  }
  return stored
}

/** One read of several roles' stored passwords: the roles a run checks share it (one psql for all). */
export const storedPasswordsSql = (roles: string[]) =>
  `SELECT rolname, coalesce(rolpassword, '') FROM pg_authid WHERE rolname IN (${roles.map(literal).join(', ')});`

/**
 * Ensure a role exists and its password is this one. `together`: every role checked in the same run of
 * tasks (this one among them), read by one query that each of their tasks declares as its probe.
 */
export function pgRole(args: PgRoleArgs, together: string[] = [args.role]) {
  const storedSql = storedPasswordsSql(together.includes(args.role) ? together : [...together, args.role])
  const options = { ...args, probes: [psqlProbe(args.server, storedSql)] }
  return defineTask(`Ensure PostgreSQL role ${args.role} is current`, options, async (ctx) => {
    if (!args.password) throw new Error(`no password for role ${args.role}`)
    const found = storedPasswords(await psqlRead(ctx, args.server, storedSql)).get(args.role)
    const exists = found !== undefined
    const stored = found ?? ''
    if (exists && scramMatches(stored, args.password)) return noChange()
    return {
      change: true,
      reason: exists ? 'password differs' : 'role is missing',
      apply: async () => {
        const verifier = literal(scramVerifier(args.password))
        await psql(
          ctx,
          args.server,
          exists
            ? `ALTER ROLE ${ident(args.role)} PASSWORD ${verifier};`
            : `CREATE ROLE ${ident(args.role)} ${args.attrs} PASSWORD ${verifier};`,
        )
      },
    }
  })
}

export interface PgDatabaseArgs extends TaskOptions {
  /** The leader's own server, where the database is read and written. */
  server: LocalServer
  database: string
  owner: string
}

/** Ensure a database exists and belongs to its owner. */
export function pgDatabase(args: PgDatabaseArgs) {
  const ownerSql = `SELECT pg_get_userbyid(datdba) FROM pg_database WHERE datname = ${literal(args.database)};`
  const options = { ...args, probes: [psqlProbe(args.server, ownerSql)] }
  return defineTask(`Ensure PostgreSQL database ${args.database} exists`, options, async (ctx) => {
    const owner = await psqlRead(ctx, args.server, ownerSql)
    if (owner === args.owner) return noChange()
    return {
      change: true,
      reason: owner ? `owned by ${owner}` : 'database is missing',
      apply: async () => {
        await psql(
          ctx,
          args.server,
          owner
            ? `ALTER DATABASE ${ident(args.database)} OWNER TO ${ident(args.owner)};`
            : `CREATE DATABASE ${ident(args.database)} OWNER ${ident(args.owner)};`,
        )
        await psql(
          ctx,
          args.server,
          `REVOKE ALL ON DATABASE ${ident(args.database)} FROM PUBLIC; GRANT ALL ON DATABASE ${ident(args.database)} TO ${ident(args.owner)};`,
        )
      },
    }
  })
}
