/**
 * app: the demo vote app on the `app` group. Debian's nodejs, an unprivileged system user, the
 * three programs' bundles (built on this machine by esbuild, see bundles.ts) copied atomically into
 * /opt/hastack-app, their environment file (root only, 0600: it holds the passwords), and one
 * hardened systemd unit per program. A program is restarted only when its bundle, its unit or the
 * environment changed (handlers), then the role waits for vote and result to answer `/healthz`.
 * The worker creates the `votes` table itself at start (idempotently, see app/db.ts), so the role
 * needs no database access of its own. HAProxy publishes the programs (templates/haproxy/app.cfg.ejs).
 */
import type { HostRun, Inventory, Role, Task, Vars } from '../../lib/types.ts'
import {
  defineTask,
  directory,
  file,
  packages,
  service,
  systemdUnit,
  template,
  user,
  waitFor,
} from '../../lib/tasks/index.ts'
import { renderTemplate } from '../../lib/template.ts'
import {
  APP_PORT_VARS,
  HAPROXY_PG_VARS,
  REDIS_CLIENT_VARS,
  TLS_VARS,
  groupMembers,
  settingsOf,
  sharedVars,
  type StackVars,
} from '../stack.ts'
import { APP_PROGRAMS, appBundles, type AppProgram } from './bundles.ts'
import { APP_DIR, APP_USER, ENV_FILE, UNITS, appEnvView } from './render.ts'

const shared = sharedVars(
  ...REDIS_CLIENT_VARS,
  ...TLS_VARS,
  ...HAPROXY_PG_VARS,
  ...APP_PORT_VARS,
  'postgresql_app_database',
  'postgresql_app_user',
  'postgresql_app_password',
)

export interface AppVars extends Vars, Pick<StackVars, keyof typeof shared.schema> {
  app_pg_host: string
  app_redis_wait_replicas: number
  app_redis_wait_timeout_ms: number
  app_vote_retry_ms: number
}

const defaults: AppVars = {
  ...shared.defaults,
  app_pg_host: '',
  app_redis_wait_replicas: 1,
  app_redis_wait_timeout_ms: 1000,
  app_vote_retry_ms: 4000,
}

const restartHandler = (program: AppProgram) => `Restart the ${program} program`

/** Cross-host checks: the groups the app connects to, its ports, and the replicas a vote waits for. */
export function validateApp(inventory: Inventory): string[] {
  const apps = groupMembers(inventory, 'app')
  if (apps.length === 0) return []
  const errors: string[] = []
  const redisHosts = groupMembers(inventory, 'redis').length
  if (groupMembers(inventory, 'sentinel').length === 0) errors.push('the app group needs Sentinels (a sentinel group)')
  for (const name of apps) {
    const v = settingsOf(inventory.hosts.get(name)!, defaults)
    if (v.app_vote_port === v.app_result_port)
      errors.push(`host ${name}: app_vote_port and app_result_port are the same port (${v.app_vote_port})`)
    if (!v.app_pg_host && groupMembers(inventory, 'haproxy').length === 0)
      errors.push(`host ${name}: no haproxy group to reach PostgreSQL through: set app_pg_host`)
    if (v.app_redis_wait_replicas > Math.max(0, redisHosts - 1))
      errors.push(
        `host ${name}: app_redis_wait_replicas is ${v.app_redis_wait_replicas} but the redis group has ` +
          `${Math.max(0, redisHosts - 1)} replica(s): no vote would ever be acknowledged`,
      )
  }
  for (const name of groupMembers(inventory, 'haproxy')) {
    const v = settingsOf(inventory.hosts.get(name)!, defaults)
    const taken = new Map<number, string>([
      [v.haproxy_pg_rw_port, 'haproxy_pg_rw_port'],
      [v.haproxy_pg_ro_port, 'haproxy_pg_ro_port'],
    ])
    if (apps.includes(name)) {
      taken.set(v.app_vote_port, 'app_vote_port')
      taken.set(v.app_result_port, 'app_result_port')
    }
    for (const portVar of ['app_http_port', 'app_result_http_port'] as const) {
      const other = taken.get(v[portVar])
      if (other) errors.push(`host ${name}: ${portVar} and ${other} are the same port (${v[portVar]})`)
      taken.set(v[portVar], portVar)
    }
  }
  return errors
}

/** A bundle copied atomically (the engine's put); no diff: a bundle is generated code, not a config. */
function bundleTask(program: AppProgram, content: string) {
  const path = `${APP_DIR}/${program}.cjs`
  const copy = file({ path, content, mode: '0644' })
  const options = { notify: restartHandler(program), probes: copy.probes }
  return defineTask(`Ensure the ${program} program is current`, options, (ctx) => copy.check({ ...ctx, diff: false }))
}

/** The tasks that put the programs, their settings and their units in place, in order. */
async function programTasks(h: HostRun): Promise<Task[]> {
  const bundles = await appBundles()
  const unitFile = (program: AppProgram) =>
    systemdUnit({
      unit: `${UNITS[program].unit}.service`,
      content: renderTemplate('app/app.service.ejs', h, {
        unit: UNITS[program],
        program,
        app_dir: APP_DIR,
        env_file: ENV_FILE,
        app_user: APP_USER,
      }),
      notify: restartHandler(program),
      name: `Ensure the ${program} unit is current`,
    })
  return [
    directory({ path: APP_DIR, mode: '0755', name: 'Ensure the app directory exists' }),
    ...APP_PROGRAMS.map((program) => bundleTask(program, bundles[program])),
    directory({ path: '/etc/hastack-app', mode: '0755', name: 'Ensure the app settings directory exists' }),
    template({
      src: 'app/app.env.ejs',
      dest: ENV_FILE,
      vars: { env: appEnvView(h) },
      mode: '0600',
      notify: APP_PROGRAMS.map(restartHandler),
      name: 'Ensure the app environment is current',
    }),
    ...APP_PROGRAMS.map(unitFile),
  ]
}

export const appRole: Role<AppVars> = {
  name: 'app',
  description: "The demo vote app (vote, worker, result) under systemd, on Debian's Node.js.",
  defaults,
  schema: {
    ...shared.schema,
    app_pg_host: {
      type: 'string',
      pattern: '^$|^[A-Za-z0-9][A-Za-z0-9_.-]*$',
      expected: 'empty, or a host name or address',
      description: "Where the app reaches HAProxy's PostgreSQL ports; empty: the first haproxy host's address.",
    },
    app_redis_wait_replicas: {
      type: 'integer',
      minimum: 0,
      maximum: 16,
      description:
        'Redis replicas that must hold a vote before it is acknowledged (WAIT); 0: the primary alone. ' +
        'At most the redis group size − 1 (validated).',
    },
    app_redis_wait_timeout_ms: {
      type: 'integer',
      minimum: 10,
      maximum: 10000,
      description: 'How long a vote waits for those replicas before it is answered 503, ms.',
    },
    app_vote_retry_ms: {
      type: 'integer',
      minimum: 0,
      maximum: 30000,
      description:
        'How long a vote refused or cut while the Redis primary changes is tried again before it is answered 503, ' +
        "ms (0: never; keep it under the clients' timeout).",
    },
  },
  validate: validateApp,
  handlers: Object.fromEntries(
    APP_PROGRAMS.map((program) => [
      restartHandler(program),
      (h: HostRun) =>
        h.do(service({ service: UNITS[program].unit, state: 'restarted', name: restartHandler(program) })),
    ]),
  ),
  async tasks(h) {
    const setup = [
      packages({ install: ['nodejs'], name: 'Ensure Node.js is installed' }),
      user({ user: APP_USER, system: true, shell: '/usr/sbin/nologin', name: 'Ensure the app user exists' }),
      ...(await programTasks(h)),
    ]
    const address = String(h.vars.address)
    const answering = [
      ['vote', h.vars.app_vote_port],
      ['result', h.vars.app_result_port],
    ] as const
    // A changed program restarts (the handlers) before the services are checked (a first start comes from
    // there); every probe of both parts is read in one round trip unless a handler ran.
    await h.doAll(setup, {
      afterHandlers: [
        ...APP_PROGRAMS.map((program) =>
          service({
            service: UNITS[program].unit,
            enabled: true,
            state: 'started',
            name: `Ensure the ${program} program runs`,
          }),
        ),
        ...answering.map(([program, port]) =>
          waitFor({
            url: `http://${address}:${port}/healthz`,
            timeoutMs: 90_000,
            name: `Wait for the ${program} program to answer /healthz`,
          }),
        ),
      ],
    })
  },
}
