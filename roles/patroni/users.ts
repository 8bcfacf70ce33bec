/**
 * PostgreSQL roles and databases on the leader, through psql as the `postgres`
 * OS user over the local socket. Passwords are compared with, and set as,
 * SCRAM verifiers computed locally (see scram.ts); SQL travels on stdin.
 */
import type { TaskContext } from '../../lib/types.ts'
import { defineTask, noChange, type TaskOptions } from '../../lib/tasks/index.ts'
import { scramMatches, scramVerifier } from './scram.ts'

const PSQL = 'psql -X -A -t -q -v ON_ERROR_STOP=1 -d postgres'

const ident = (name: string) => `"${name.replaceAll('"', '""')}"`
const literal = (text: string) => `'${text.replaceAll("'", "''")}'`

/** Run SQL as postgres; the rows as text. */
export async function psql(ctx: TaskContext, sql: string): Promise<string> {
  const r = await ctx.conn.run(PSQL, { user: 'postgres', stdin: sql, cwd: '/' })
  if (r.code !== 0) throw new Error(`psql failed: ${r.stderr.trim().split('\n').slice(-3).join(' ')}`)
  return r.stdout.trim()
}

export interface PgRoleArgs extends TaskOptions {
  role: string
  password: string
  /** Attributes for CREATE ROLE, e.g. "LOGIN REPLICATION". */
  attrs: string
}

/** Ensure a role exists and its password is this one. */
export function pgRole(args: PgRoleArgs) {
  return defineTask(`Ensure PostgreSQL role ${args.role} is current`, args, async (ctx) => {
    if (!args.password) throw new Error(`no password for role ${args.role}`)
    const stored = await psql(
      ctx,
      `SELECT coalesce(rolpassword, '') FROM pg_authid WHERE rolname = ${literal(args.role)};`,
    )
    const exists =
      stored !== '' || (await psql(ctx, `SELECT 1 FROM pg_roles WHERE rolname = ${literal(args.role)};`)) === '1'
    if (exists && scramMatches(stored, args.password)) return noChange()
    return {
      change: true,
      reason: exists ? 'password differs' : 'role is missing',
      apply: async () => {
        const verifier = literal(scramVerifier(args.password))
        await psql(
          ctx,
          exists
            ? `ALTER ROLE ${ident(args.role)} PASSWORD ${verifier};`
            : `CREATE ROLE ${ident(args.role)} ${args.attrs} PASSWORD ${verifier};`,
        )
      },
    }
  })
}

export interface PgDatabaseArgs extends TaskOptions {
  database: string
  owner: string
}

/** Ensure a database exists and belongs to its owner. */
export function pgDatabase(args: PgDatabaseArgs) {
  return defineTask(`Ensure PostgreSQL database ${args.database} exists`, args, async (ctx) => {
    const owner = await psql(
      ctx,
      `SELECT pg_get_userbyid(datdba) FROM pg_database WHERE datname = ${literal(args.database)};`,
    )
    if (owner === args.owner) return noChange()
    return {
      change: true,
      reason: owner ? `owned by ${owner}` : 'database is missing',
      apply: async () => {
        await psql(
          ctx,
          owner
            ? `ALTER DATABASE ${ident(args.database)} OWNER TO ${ident(args.owner)};`
            : `CREATE DATABASE ${ident(args.database)} OWNER ${ident(args.owner)};`,
        )
        await psql(
          ctx,
          `REVOKE ALL ON DATABASE ${ident(args.database)} FROM PUBLIC; GRANT ALL ON DATABASE ${ident(args.database)} TO ${ident(args.owner)};`,
        )
      },
    }
  })
}
