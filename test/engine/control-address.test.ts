/**
 * The firewall's idea of the control machine's address, the `controlAddress` fact read from sshd's
 * SSH_CONNECTION over a real SSH connection (test/fixtures/sshd.ts on loopback), as a plain user and as root,
 * also after sudo commands went through the persistent privileged session: it must be the address the
 * connection comes from.
 */
import t from 'tap'
import { SshConnection } from '../../lib/connection/ssh.ts'
import { gatherFacts } from '../../lib/facts/system.ts'
import { startSshd } from '../fixtures/sshd.ts'

const sshd = await startSshd()
t.teardown(() => sshd.stop())

t.test('the control address is where the SSH connection comes from, for a user and for root', async (t) => {
  for (const spec of [sshd.userSpec(), sshd.rootSpec()]) {
    const conn = await SshConnection.connect(spec)
    t.teardown(() => conn.close())
    t.equal((await gatherFacts(conn)).controlAddress, '127.0.0.1', `as ${spec.user}`)
    await conn.run('true', { sudo: true, check: true })
    t.equal((await gatherFacts(conn)).controlAddress, '127.0.0.1', `as ${spec.user}, after a privileged command`)
  }
})
