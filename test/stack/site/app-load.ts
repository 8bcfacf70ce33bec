/**
 * The load generator as a user runs it against the healthy stack: `playbooks/load.ts --rate 50
 * --duration 30` through HAProxy exits 0, every vote acknowledged and stored once, none failed.
 */
import { spawn } from 'node:child_process'
import { mkdirSync, readFileSync, rmSync } from 'node:fs'
import { join } from 'node:path'
import type { LoadReport } from '../../../playbooks/load/report.ts'
import type { SiteCheck } from './context.ts'

/** Run `npx zx playbooks/load.ts` with these arguments, bounded in time; its exit code and output. */
export async function loadCli(repo: string, args: string[], timeoutMs: number) {
  const child = spawn('npx', ['zx', 'playbooks/load.ts', ...args], { cwd: repo, stdio: ['ignore', 'pipe', 'pipe'] })
  let output = ''
  child.stdout.on('data', (d: Buffer) => (output += d.toString()))
  child.stderr.on('data', (d: Buffer) => (output += d.toString()))
  const timer = setTimeout(() => child.kill('SIGTERM'), timeoutMs)
  const exitCode: number = await new Promise((done) => child.on('close', (code) => done(code ?? 1)))
  clearTimeout(timer)
  return { exitCode, output }
}

export const appLoad: SiteCheck = {
  name: 'load: 50 votes/s for 30 s through HAProxy, every one acknowledged and stored once',
  destructive: false,
  async run(t, ctx) {
    const json = join(ctx.repo, 'reports/site-load.json')
    mkdirSync(join(ctx.repo, 'reports'), { recursive: true })
    rmSync(json, { force: true })
    const args = ['-i', ctx.inventory, '--rate', '50', '--duration', '30', '--json', json]
    const run = await loadCli(ctx.repo, args, 180_000)
    t.comment(run.output.trim())
    t.equal(run.exitCode, 0, 'load.ts exits 0')
    const report = JSON.parse(readFileSync(json, 'utf8')) as LoadReport
    t.equal(report.requests, 1500, '1500 votes sent')
    t.equal(report.failed, 0, 'failed 0')
    t.equal(report.acknowledged, 1500)
    t.equal(report.stored, 1500, 'every acknowledged vote stored')
    t.equal(report.lost, 0, 'lost 0')
    t.equal(report.duplicated, 0, 'duplicated 0')
  },
}
