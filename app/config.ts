/**
 * The vote app's configuration, shared by its three programs (vote, worker, result): read from the
 * environment (the role's env file, /etc/hastack-app/app.env), checked once at start, typed. A bad
 * or missing value stops the program with the variable's name, never its value.
 */

export interface Endpoint {
  host: string
  port: number
}

export interface AppConfig {
  /** Address the HTTP programs listen on (the host's cluster address). */
  listenAddress: string
  votePort: number
  resultPort: number
  /** How long the vote program tries a refused or cut Redis push again before answering 503, ms (0: never). */
  voteRetryMs: number
  redis: {
    sentinels: Endpoint[]
    masterName: string
    password: string
    sentinelPassword: string
    /** Replicas that must hold a vote before it is acknowledged (Redis WAIT); 0: the primary alone. */
    waitReplicas: number
    waitTimeoutMs: number
    /** The CA certificate file Redis and the Sentinels are checked against (TLS); undefined: plaintext. */
    tlsCaFile?: string
  }
  postgres: {
    host: string
    writePort: number
    readPort: number
    database: string
    user: string
    password: string
    /** With PostgreSQL over TLS: the CA file the server's certificate is checked with. */
    caFile?: string
  }
}

export class ConfigError extends Error {
  override name = 'ConfigError'
}

type Env = Record<string, string | undefined>

const WORD = /^[A-Za-z0-9][A-Za-z0-9_.-]*$/

function required(env: Env, name: string): string {
  const value = env[name]
  if (value === undefined || value === '') throw new ConfigError(`${name} is not set`)
  return value
}

function absolutePath(env: Env, name: string): string {
  const value = required(env, name)
  if (!/^(\/[A-Za-z0-9_.-]+)+$/.test(value)) throw new ConfigError(`${name} must be an absolute path`)
  return value
}

function word(env: Env, name: string): string {
  const value = required(env, name)
  if (!WORD.test(value)) throw new ConfigError(`${name} must be a host name, address or name (letters, digits, _ . -)`)
  return value
}

function integer(env: Env, name: string, min: number, max: number): number {
  const text = required(env, name)
  const value = Number(text)
  if (!/^\d+$/.test(text) || value < min || value > max)
    throw new ConfigError(`${name} must be an integer from ${min} to ${max}`)
  return value
}

const port = (env: Env, name: string) => integer(env, name, 1, 65535)

/** An optional absolute file path (unset or empty: undefined). */
function optionalPath(env: Env, name: string): string | undefined {
  const value = env[name]
  if (value === undefined || value === '') return undefined
  if (!/^\/[A-Za-z0-9_./-]+$/.test(value)) throw new ConfigError(`${name} must be an absolute file path`)
  return value
}

/** `host:port,host:port` → endpoints (at least one). */
export function parseEndpoints(name: string, text: string): Endpoint[] {
  const endpoints = text.split(',').map((item) => {
    const match = /^([A-Za-z0-9][A-Za-z0-9_.-]*):(\d{1,5})$/.exec(item.trim())
    if (!match || Number(match[2]) < 1 || Number(match[2]) > 65535)
      throw new ConfigError(`${name} must be a comma-separated list of host:port`)
    return { host: match[1]!, port: Number(match[2]) }
  })
  return endpoints
}

/** The configuration from the environment; throws a ConfigError naming the first bad variable. */
export function loadConfig(env: Env = process.env): AppConfig {
  return {
    listenAddress: word(env, 'APP_LISTEN_ADDRESS'),
    votePort: port(env, 'APP_VOTE_PORT'),
    resultPort: port(env, 'APP_RESULT_PORT'),
    voteRetryMs: integer(env, 'APP_VOTE_RETRY_MS', 0, 30_000),
    redis: {
      sentinels: parseEndpoints('APP_REDIS_SENTINELS', required(env, 'APP_REDIS_SENTINELS')),
      masterName: word(env, 'APP_REDIS_MASTER_NAME'),
      password: required(env, 'APP_REDIS_PASSWORD'),
      sentinelPassword: required(env, 'APP_SENTINEL_PASSWORD'),
      waitReplicas: integer(env, 'APP_REDIS_WAIT_REPLICAS', 0, 16),
      waitTimeoutMs: integer(env, 'APP_REDIS_WAIT_TIMEOUT_MS', 1, 60_000),
      tlsCaFile: optionalPath(env, 'APP_REDIS_TLS_CA_FILE'),
    },
    postgres: {
      host: word(env, 'APP_PG_HOST'),
      writePort: port(env, 'APP_PG_WRITE_PORT'),
      readPort: port(env, 'APP_PG_READ_PORT'),
      database: word(env, 'APP_PG_DATABASE'),
      user: word(env, 'APP_PG_USER'),
      password: required(env, 'APP_PG_PASSWORD'),
      caFile: env.APP_PG_CA_FILE ? absolutePath(env, 'APP_PG_CA_FILE') : undefined,
    },
  }
}

/** Load the configuration or end the program with the reason (exit 78, EX_CONFIG: systemd shows it). */
export function configOrExit(program: string): AppConfig {
  try {
    return loadConfig()
  } catch (error) {
    if (!(error instanceof ConfigError)) throw error
    console.error(`${program}: ${error.message}`)
    process.exit(78)
  }
}
