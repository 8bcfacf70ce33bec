/**
 * Upstream Patroni's etcd3 leader-key fix (3.0.3: d98d6d0b, 1c7bf2f5) carried on Debian 12's Patroni 3.0.2, the
 * way a distribution carries a patch: files/patroni/etcd3-update-leader.patch is applied to the installed
 * patroni/dcs/etcd3.py only when that file is exactly Debian's 3.0.2 one (its sha256), and the result must have
 * the known patched sha256. A patched file is left as it is; any other file (a newer package, fixed upstream)
 * is left alone with the reason. The write is atomic and the new file is compiled before it replaces the old.
 */
import { readFileSync } from 'node:fs'
import { createHash } from 'node:crypto'
import { applyPatch } from 'diff'
import type { Task } from '../../lib/types.ts'
import { defineTask, noChange } from '../../lib/tasks/common.ts'
import { pathState, pathStateProbe } from '../../lib/facts/files.ts'

/** Where Debian's patroni package installs the etcd3 DCS module. */
export const ETCD3_MODULE = '/usr/lib/python3/dist-packages/patroni/dcs/etcd3.py'
/** sha256 of etcd3.py in Debian 12's patroni 3.0.2-1 (the same bytes as upstream's v3.0.2 tag). */
export const DEBIAN_ETCD3_SHA256 = '79ed0afda03ec5de422579ec2bcdd848f392dd4dcdb54103f36cf9b77f85fdb3'
/** sha256 of that file with the patch applied. */
export const PATCHED_ETCD3_SHA256 = '3f6b1f56c78079db3d2b6db2c202908d91484a8bdeef060378ef7374b2da4a57'
export const ETCD3_PATCH_FILE = new URL('../../files/patroni/etcd3-update-leader.patch', import.meta.url)

/** Compiles the temp file as py_compile does, without leaving a .pyc of the temp file behind. */
const COMPILES = `python3 -c 'import sys; compile(open(sys.argv[1], "rb").read(), sys.argv[1], "exec")' %s`

const sha256 = (content: string) => createHash('sha256').update(content).digest('hex')

/** Debian's etcd3.py with the patch applied; throws when the patch does not give the known patched file. */
export function patchedEtcd3(original: string): string {
  const patched = applyPatch(original, readFileSync(ETCD3_PATCH_FILE, 'utf8'))
  if (patched === false || sha256(patched) !== PATCHED_ETCD3_SHA256)
    throw new Error(`${ETCD3_PATCH_FILE.pathname} does not turn Debian's 3.0.2 etcd3.py into the known patched file`)
  return patched
}

/**
 * Ensure the installed etcd3.py carries the leader-key fix; `notify` (a running member's restart) when it
 * changed, since a running Patroni keeps the code it started with.
 */
export function etcd3LeaderFix(notify?: string): Task {
  const name = "Ensure Patroni's etcd3 module carries upstream's leader-key fix"
  return defineTask(name, { name, notify, probes: [pathStateProbe(ETCD3_MODULE)] }, async (ctx) => {
    const state = await pathState(ctx.conn, ETCD3_MODULE)
    if (state.type !== 'file') {
      if (ctx.check) return { change: false, skip: true, reason: 'Patroni is not installed yet (check mode)' }
      throw new Error(`${ETCD3_MODULE} is missing (${state.type}): is the patroni package installed?`)
    }
    if (state.sha256 === PATCHED_ETCD3_SHA256) return noChange('already patched')
    if (state.sha256 !== DEBIAN_ETCD3_SHA256)
      return noChange(
        `left alone: sha256 ${state.sha256} is not Debian's Patroni 3.0.2 etcd3.py (a newer package carries ` +
          'the fix from 3.0.3 on; check `dpkg -s patroni`)',
      )
    return {
      change: true,
      reason: "Debian's Patroni 3.0.2 etcd3.py: applying upstream's leader-key fix (d98d6d0b, 1c7bf2f5)",
      apply: async () => {
        const original = (await ctx.conn.get(ETCD3_MODULE)).toString('utf8')
        if (sha256(original) !== DEBIAN_ETCD3_SHA256) throw new Error(`${ETCD3_MODULE} changed during the run`)
        await ctx.conn.put(ETCD3_MODULE, patchedEtcd3(original), {
          mode: '0644',
          owner: 'root',
          group: 'root',
          validate: COMPILES,
        })
      },
    }
  })
}
