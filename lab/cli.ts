/**
 * The lab's command line: `npm run lab -- <command> -i <inventory> [options]`.
 * Commands: up, down, add HOST, status, ssh HOST [cmd], kill HOST, stop HOST, start HOST,
 * freeze HOST, thaw HOST, partition HOST [--from H1,H2], heal [HOST],
 * slow HOST --delay MS | --rate KBIT, base (build the shared base root only).
 */
import { spawnSync } from 'node:child_process'
import { ensureBase } from './base.ts'
import { Lab } from './lab.ts'
import { parseCommandLineOrExit } from '../lib/cli/parse.ts'

const USAGE = `usage: npm run lab -- <command> -i INVENTORY [--name NAME] [args]
  up                          boot every host of the inventory (fresh disks), wait for SSH
  down                        stop every host, remove all the lab made
  add HOST                    boot a host added to the inventory after up (the others untouched)
  status                      host, state, address, pid, memory, faults
  ssh HOST [CMD...]           SSH as hastack (--user root for root)
  kill HOST                   power cut (SIGKILL to the host's PID 1); the disk stays
  stop HOST                   clean poweroff
  start HOST                  boot a stopped or killed host again, disk kept
  freeze HOST | thaw HOST     pause / resume every process of the host
  partition HOST [--from H1,H2]  drop traffic between HOST and the others (or only H1,H2)
  heal [HOST]                 undo partitions and slow links (of HOST, or all)
  slow HOST --delay MS [--jitter MS] | --rate KBIT   slow the host's link
  base                        build the shared base root only (no inventory needed)`

// The one parser of every hastack CLI (lib/cli/parse.ts): unknown options are refused by name.
const parsed = parseCommandLineOrExit(
  process.argv.slice(2),
  {
    inventory: { type: 'string', short: 'i', valueName: 'FILE', description: 'the inventory whose hosts the lab runs' },
    name: { type: 'string', valueName: 'NAME', description: 'the lab name (default: the inventory file name)' },
    from: { type: 'string', valueName: 'H1,H2', description: 'partition: cut HOST off these hosts only' },
    delay: { type: 'string', valueName: 'MS', description: 'slow: added latency' },
    jitter: { type: 'string', valueName: 'MS', description: 'slow: latency jitter' },
    rate: { type: 'string', valueName: 'KBIT', description: 'slow: bandwidth limit' },
    user: { type: 'string', valueName: 'USER', description: 'ssh: log in as this user (default hastack)' },
  },
  USAGE,
  true,
)
const text = (name: string) => parsed.values[name] as string | undefined
const values = {
  inventory: text('inventory'),
  name: text('name'),
  from: text('from'),
  delay: text('delay'),
  jitter: text('jitter'),
  rate: text('rate'),
  user: text('user'),
}
const { positionals } = parsed

const [command, ...rest] = positionals
const log = (m: string) => console.error(`[lab ${new Date().toISOString().slice(11, 19)}] ${m}`)

function fail(message: string): never {
  console.error(`lab: ${message}`)
  process.exit(1)
}

if (!command) {
  console.log(USAGE)
  process.exit(2)
}

try {
  if (command === 'base') {
    const b = await ensureBase(log)
    log(b.built ? `base built at ${b.path} in ${(b.ms / 1000).toFixed(1)}s` : `base ${b.path} is current`)
    process.exit(0)
  }
  if (!values.inventory) fail(`${command}: -i INVENTORY is required\n${USAGE}`)
  const lab = new Lab({ inventory: values.inventory, name: values.name, log })
  const host = rest[0]
  const needHost = () => host ?? fail(`${command}: HOST is required`)
  switch (command) {
    case 'up':
      await lab.up()
      break
    case 'down':
      await lab.down()
      break
    case 'add':
      await lab.addHost(needHost())
      break
    case 'status': {
      const rows = lab.status()
      console.log(['HOST', 'STATE', 'ADDRESS', 'PID', 'RSS(MiB)', 'FAULTS'].join('\t'))
      for (const r of rows)
        console.log(
          [r.host, r.state, r.address || '-', r.pid ?? '-', r.memoryMiB ?? '-', r.faults.join('; ') || '-'].join('\t'),
        )
      break
    }
    case 'ssh': {
      const args = lab.sshArgs(needHost(), values.user)
      const cmd = rest.slice(1)
      const tty = cmd.length === 0 && process.stdin.isTTY ? ['-t'] : []
      const r = spawnSync(
        'ssh',
        [
          ...tty,
          ...args.map((a) => (a === 'BatchMode=yes' && cmd.length === 0 ? 'BatchMode=no' : a)),
          ...(cmd.length ? ['--', cmd.join(' ')] : []),
        ],
        { stdio: 'inherit' },
      )
      process.exit(r.status ?? 1)
      break // not reached: keeps the switch readable
    }
    case 'kill':
      await lab.kill(needHost())
      break
    case 'stop':
      await lab.stop(needHost())
      break
    case 'start':
      await lab.start(needHost())
      break
    case 'freeze':
      await lab.freeze(needHost())
      break
    case 'thaw':
      await lab.thaw(needHost())
      break
    case 'partition':
      await lab.partition(needHost(), values.from?.split(',').filter(Boolean))
      break
    case 'heal':
      await lab.heal(host)
      break
    case 'slow':
      await lab.slow(needHost(), {
        delayMs: values.delay ? Number(values.delay) : undefined,
        jitterMs: values.jitter ? Number(values.jitter) : undefined,
        rateKbit: values.rate ? Number(values.rate) : undefined,
      })
      break
    default:
      fail(`unknown command "${command}"\n${USAGE}`)
  }
} catch (e: any) {
  fail(e.message ?? String(e))
}
