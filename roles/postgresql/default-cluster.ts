/**
 * Dropping Debian's `main` cluster (left by an earlier install) only when it holds no
 * user data: no database besides the templates and `postgres`, and no table, view,
 * sequence or other relation of a user in `postgres`. A running cluster is asked with
 * SQL; a stopped one is read from its files (objects users create get numbers from
 * 16384 on, PostgreSQL's FirstNormalObjectId), which can only err towards keeping it.
 * A cluster with user data is refused with what was found and what to do.
 */
import type { TaskContext } from '../../lib/types.ts'
import { defineTask, noChange } from '../../lib/tasks/index.ts'
import { quoteArgs, sh } from '../../lib/connection/quote.ts'
import { pathStateCommand } from '../../lib/facts/files.ts'

/** PostgreSQL's first object number for user objects; template1 is 1, template0 4 and postgres 5 (fixed since 15). */
const FIRST_USER_OID = 16384
const POSTGRES_DB_OID = 5

export interface ClusterRow {
  port: number
  online: boolean
  dataDir: string
}

/** One line of `pg_lsclusters --no-header VERSION main`; undefined when there is no such cluster. */
export function parseClusterRow(stdout: string): ClusterRow | undefined {
  const fields = stdout.trim().split(/\s+/)
  if (fields.length < 6) return undefined
  return { port: Number(fields[2]), online: fields[3]!.startsWith('online'), dataDir: fields[5]! }
}

/** SQL listing what users made: extra databases, then relations in `postgres` outside the system schemas. */
export const USER_DATA_SQL = [
  "SELECT 'database ' || datname FROM pg_database WHERE NOT datistemplate AND datname <> 'postgres'",
  "UNION ALL SELECT 'relation ' || n.nspname || '.' || c.relname",
  '  FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace',
  "  WHERE c.relkind IN ('r', 'p', 'v', 'm', 'S', 'f')",
  "  AND n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg\\_toast%'",
  "  AND n.nspname NOT LIKE 'pg\\_temp%';",
].join('\n')

/** What users made, from the listings of a stopped cluster's `base/` and `base/5/` directories. */
export function userDataFromFiles(baseEntries: string[], postgresFiles: string[]): string[] {
  const numberOf = (name: string) => Number(/^(\d+)/.exec(name)?.[1] ?? NaN)
  const databases = baseEntries.filter((e) => /^\d+$/.test(e) && numberOf(e) >= FIRST_USER_OID)
  const relations = new Set(postgresFiles.map(numberOf).filter((n) => n >= FIRST_USER_OID))
  const found = databases.map((oid) => `database with OID ${oid}`)
  if (relations.size) found.push(`${relations.size} relation file(s) of users in postgres`)
  return found
}

/** Read what users made in the cluster (SQL when it runs, its files when it is stopped). */
async function userData(ctx: TaskContext, row: ClusterRow): Promise<string[]> {
  if (row.online) {
    const psql = ['psql', '-X', '-A', '-t', '-q', '-v', 'ON_ERROR_STOP=1', '-p', String(row.port), '-d', 'postgres']
    const r = await ctx.conn.run(psql, { user: 'postgres', stdin: USER_DATA_SQL, cwd: '/' })
    if (r.code !== 0) throw new Error(`cannot read Debian's main cluster: ${r.stderr.trim().split('\n').pop()}`)
    return r.stdout.split('\n').filter(Boolean)
  }
  const base = `${row.dataDir}/base`
  // A data directory that was never initialised holds nothing to lose.
  const postgresDb = `${base}/${POSTGRES_DB_OID}`
  const listing = sh`if [ -d ${base} ]; then ls -1 -- ${base}; echo ---; ls -1 -- ${postgresDb} 2>/dev/null; fi; true`
  const list = await ctx.conn.run(listing, { check: true })
  const [entries = '', files = ''] = list.stdout.split('---\n')
  return userDataFromFiles(entries.split('\n').filter(Boolean), files.split('\n').filter(Boolean))
}

/** The message of a refusal: what was found and the ways on. */
export function refusal(version: number, row: ClusterRow, found: string[]): string {
  const shown = found.length > 5 ? [...found.slice(0, 5), `and ${found.length - 5} more`] : found
  return [
    `Debian's ${version}/main cluster (${row.dataDir}) holds user data: ${shown.join(', ')}.`,
    `hastack drops it only when it is empty. Save what you need (pg_dumpall), then drop it yourself`,
    `(pg_dropcluster --stop ${version} main), or set postgresql_drop_default_cluster: false to keep it.`,
  ].join(' ')
}

/**
 * The file whose presence makes a cluster exist for pg_lsclusters (postgresql-common's get_version_clusters:
 * `<confroot>/<version>/<name>/postgresql.conf` existing or a dead symlink, /etc/postgresql as the root).
 */
export const clusterConfFile = (version: number) => `/etc/postgresql/${version}/main/postgresql.conf`

/** Stop and drop Debian's main cluster of this version, when it exists and holds no user data. */
export function dropDefaultClusterTask(version: number) {
  const list = quoteArgs(['pg_lsclusters', '--no-header', String(version), 'main'])
  const conf = clusterConfFile(version)
  return defineTask(
    'Ensure no Debian main cluster runs beside Patroni',
    // The path's state is a probe (read with the others in one round trip, without a process of its own):
    // pg_lsclusters, a Perl program of some 50 ms of CPU, runs only when the cluster's file is there.
    { probes: [{ kind: 'path', path: conf }] },
    async (ctx) => {
      if ((await ctx.conn.run(pathStateCommand(conf))).stdout === 'absent\n') return noChange()
      const listed = await ctx.conn.run(list)
      const row = listed.code === 0 ? parseClusterRow(listed.stdout) : undefined
      if (!row) return noChange()
      const found = await userData(ctx, row)
      if (found.length) throw new Error(refusal(version, row, found))
      return {
        change: true,
        reason: `Debian's ${version}/main cluster exists and holds no user data`,
        apply: async () => {
          await ctx.conn.run(['pg_dropcluster', '--stop', String(version), 'main'], { check: true })
        },
      }
    },
  )
}
