/**
 * The result program: HTTP on APP_RESULT_PORT (see result-api.ts). Counts are read through
 * HAProxy's read-only port (the replicas); when no replica answers, through the write port.
 */
import { configOrExit } from './config.ts'
import { countVotes, pool } from './db.ts'
import { drainOnSignal, httpServer, listen } from './http.ts'
import { firstAnswer, resultHandler, type CountReader } from './result-api.ts'

const config = configOrExit('result')
const replicas = pool(config, config.postgres.readPort, 4)
const primary = pool(config, config.postgres.writePort, 2)

const reader: CountReader = {
  counts: () => firstAnswer([() => countVotes(replicas), () => countVotes(primary)]),
  healthy: () =>
    firstAnswer([() => replicas.query('SELECT 1'), () => primary.query('SELECT 1')]).then(
      () => true,
      () => false,
    ),
}

async function main(): Promise<void> {
  const server = httpServer(resultHandler(reader))
  await listen(server, config.resultPort, config.listenAddress)
  console.log(`result: listening on ${config.listenAddress}:${config.resultPort}`)
  drainOnSignal('result', [server], async () => {
    await Promise.all([replicas.end(), primary.end()])
  })
}

main().catch((error: unknown) => {
  console.error(`result: ${(error as Error).message}`)
  process.exit(1)
})
