/**
 * certificates: with `tls_enabled`, each host gets a key and a certificate signed by the stack's CA
 * (ca.ts) in `tls_dir`: `ca.crt`, `host.crt` and `host.key` (root, 0600), and a copy per service the
 * host runs (`<tls_dir>/<service>/`, key readable by the group `hastack-tls-<service>` only) for etcd,
 * postgres, patroni and redis (Sentinel runs as redis too), prometheus (its client certificate for etcd's
 * metrics), and for haproxy `host.pem` (certificate then key in one file, as HAProxy's `crt` wants them)
 * beside the CA; postgres's copy also goes to the pgBackRest repository host, and a member that reaches the
 * repository over pgBackRest's TLS server (`pgbackrest_tls`) gets there a second certificate for the same key,
 * with its host name as CommonName (the server authorizes a client by its CN, which the host certificate must
 * not carry for etcd). The key is generated ON the host and never
 * leaves it: the host makes a request, the controller signs it with the names it decides (host name,
 * localhost, cluster address, loopback and the VIP on haproxy hosts). A certificate is issued again when
 * it is missing, not from the current CA, for other names or another key, or expires within
 * `tls_renew_margin_days`: renewal is simply a re-run, and a second run changes nothing.
 */
import { readFileSync } from 'node:fs'
import path from 'node:path'
import type { HostRun, Inventory, Probe, Role, Task, Vars } from '../../lib/types.ts'
import { command, defineTask, directory, file, group, noChange, packages, user } from '../../lib/tasks/index.ts'
import { sh } from '../../lib/connection/quote.ts'
import { contentDigestCommand, pathState, pathStateProbe } from '../../lib/facts/files.ts'
import { IPV4 } from '../../lib/inventory/formats.ts'
import { TLS_FILES, pgbackrestClientFiles, tlsDirectory, tlsFiles, type TlsCopy } from '../tls.ts'
import { STACK_DEFAULTS, TLS_VARS, groupMembers, sharedVars, tlsOn, type StackVars } from '../stack.ts'
import { caFiles, caProblems, ensureCa, signRequest, type CaFiles, type CertificateNames } from './ca.ts'
import { certificateProblems } from './inspect.ts'

const shared = sharedVars(...TLS_VARS)

export interface CertificatesVars extends Vars, Pick<StackVars, keyof typeof shared.defaults> {
  tls_cert_days: number
  tls_renew_margin_days: number
  tls_ca_days: number
  tls_ca_cert_file?: string
  tls_ca_key_file?: string
}

/** Where a host keeps a TLS file: `<tls_dir>/<file>`, or in a service's copy `<tls_dir>/<service>/<file>`. */
const tlsPath = (vars: Vars, file: string, service?: TlsCopy) => `${tlsDirectory(vars, service)}/${file}`

/** The files of a service's copy and their modes: HAProxy's in one PEM, the others' apart. */
function serviceFiles(service: string): { file: string; sources: string[]; mode: string }[] {
  const ca = { file: TLS_FILES.ca, sources: [TLS_FILES.ca], mode: '0644' }
  if (service === 'haproxy')
    return [ca, { file: TLS_FILES.pem, sources: [TLS_FILES.cert, TLS_FILES.key], mode: '0640' }]
  return [
    ca,
    { file: TLS_FILES.cert, sources: [TLS_FILES.cert], mode: '0644' },
    { file: TLS_FILES.key, sources: [TLS_FILES.key], mode: '0640' },
  ]
}

/** The services that read the host's key, by the group whose hosts run them. */
export function tlsServices(h: Pick<HostRun, 'groups' | 'vars'>): TlsCopy[] {
  const etcd = String(h.vars.etcd_group ?? STACK_DEFAULTS.etcd_group)
  const patroni = String(h.vars.patroni_group ?? STACK_DEFAULTS.patroni_group)
  const repository = String(h.vars.pgbackrest_group ?? STACK_DEFAULTS.pgbackrest_group)
  const services: TlsCopy[] = []
  if (h.groups.includes(etcd)) services.push('etcd')
  if (h.groups.includes(patroni)) services.push('postgres', 'patroni')
  // pgBackRest's TLS server runs as postgres on the repository host, with postgres's copy.
  else if (h.groups.includes(repository) && tlsOn(h.vars, 'pgbackrest')) services.push('postgres')
  if (h.groups.includes('redis') || h.groups.includes('sentinel')) services.push('redis')
  if (h.groups.includes('haproxy')) services.push('haproxy')
  if (h.groups.includes('monitoring')) services.push('prometheus')
  return services
}

/** The group allowed to read a service's copy of the key. */
export const tlsGroup = (service: string) => `hastack-tls-${service}`

/**
 * Let a service's user read the service's copy of the host key: it joins `hastack-tls-<service>` (made by
 * this role). Run by the service's role after its package made the user and before the service starts.
 */
export function tlsReader(userName: string, service: string): Task {
  return user({
    user: userName,
    groups: [tlsGroup(service)],
    name: `Ensure ${userName} may read the ${service} TLS files (group ${tlsGroup(service)})`,
  })
}

/** The names a host's certificate carries. */
export function hostCertificateNames(h: Pick<HostRun, 'name' | 'groups' | 'vars'>): CertificateNames {
  const address = String(h.vars.address)
  const names: CertificateNames = { dns: [h.name, 'localhost'], ips: ['127.0.0.1'] }
  if (IPV4.test(address)) names.ips.push(address)
  else if (address !== h.name) names.dns.push(address)
  const vip = h.vars.vip_address
  if (h.groups.includes('haproxy') && typeof vip === 'string') names.ips.push(vip)
  return names
}

/** Problems of the CA the inventory names (or hastack's, once generated), before any connection. */
export function certificateSetupProblems(inventory: Inventory): string[] {
  const first = inventory.hosts.values().next().value
  if (!first || ![...inventory.hosts.values()].some((h) => h.vars.tls_enabled === true)) return []
  const v = first.vars
  if ((v.tls_ca_cert_file === undefined) !== (v.tls_ca_key_file === undefined))
    return ['set both tls_ca_cert_file and tls_ca_key_file (your own CA), or neither (hastack generates one)']
  return caProblems(caFiles(inventory.file, v))
}

/**
 * Copy a file on the host (or several, one after the other, into one file) with an owner and mode: the
 * key never travels to the controller.
 */
function copyOnHost(sources: string[], dest: string, mode: string, owner: string, groupName: string): Task {
  const sumCommand = contentDigestCommand(sources)
  // Both reads are probes: a run of tasks (h.doAll) answers them with the others' in one round trip.
  const probes: Probe[] = [{ kind: 'digest', paths: sources }, pathStateProbe(dest)]
  return defineTask(`Ensure ${dest} is a copy of ${sources.join(' + ')}`, { probes }, async (ctx) => {
    const sum = await ctx.conn.run(sumCommand)
    const wanted = sum.code === 0 ? sum.stdout.split(' ')[0] : undefined
    const to = await pathState(ctx.conn, dest)
    const same = wanted !== undefined && to.sha256 === wanted
    if (same && to.mode === mode && to.owner === owner && to.group === groupName) return noChange()
    const temp = `${dest}.hastack-new`
    return {
      change: true,
      reason: same ? 'its owner or mode differs' : to.type === 'absent' ? 'the copy is missing' : 'the copy differs',
      apply: async () =>
        void (await ctx.conn.run(
          sh`umask 077 && cat -- ${sources} > ${temp} && chown ${`${owner}:${groupName}`} -- ${temp}` +
            sh` && chmod ${mode} -- ${temp} && mv -f -- ${temp} ${dest}`,
          { check: true },
        )),
    }
  })
}

/**
 * Whether this host reaches the pgBackRest repository over its TLS server and so needs a client certificate
 * with a CommonName: a member other than the repository host, with `pgbackrest_tls` on.
 */
export function needsPgbackrestClientCertificate(h: Pick<HostRun, 'name' | 'inventory' | 'vars'>): boolean {
  const v = h.vars
  const repositories = groupMembers(h.inventory, String(v.pgbackrest_group ?? STACK_DEFAULTS.pgbackrest_group))
  const members = groupMembers(h.inventory, String(v.patroni_group ?? STACK_DEFAULTS.patroni_group))
  return tlsOn(v, 'pgbackrest') && repositories.length > 0 && !repositories.includes(h.name) && members.includes(h.name)
}

/** A certificate the role issues for the host's key: where it goes, and the CommonName it carries (none: none). */
interface IssuedCertificate {
  path: string
  commonName?: string
  /** The task's name. */
  name: string
}

/**
 * Issue a certificate for the host's key when it is not as wanted: a request made on the host, signed on the
 * controller with the host's names.
 */
function issuedCertificate(h: HostRun, ca: CaFiles, caPem: string | undefined, issued: IssuedCertificate): Task {
  const v = h.vars as CertificatesVars
  const { key: keyPath } = tlsFiles(v)
  const certPath = issued.path
  const names = hostCertificateNames(h)
  const publicKeyCommand = sh`openssl pkey -in ${keyPath} -pubout 2>/dev/null`
  // The certificate and the key's public half are probes (the private key itself is never read back).
  const probes: Probe[] = [
    { kind: 'read', path: certPath },
    { kind: 'run', command: publicKeyCommand },
  ]
  return defineTask(issued.name, { probes }, async (ctx) => {
    if (caPem === undefined)
      return { change: true, reason: 'the CA is made by the first converge', apply: async () => {} }
    const current = await ctx.conn.get(certPath).then(
      (b) => b.toString(),
      () => undefined,
    )
    const pub = await ctx.conn.run(publicKeyCommand)
    const problems = certificateProblems(current, {
      caPem,
      names,
      publicKeyPem: pub.code === 0 ? pub.stdout : undefined,
      renewMarginDays: v.tls_renew_margin_days,
      now: new Date(),
      commonName: issued.commonName,
    })
    if (problems.length === 0) return noChange()
    return {
      change: true,
      reason: problems.join('; '),
      apply: async () => {
        // The host is named in the subject's organizational unit and the SANs; a CommonName only when wanted
        // (inspect.ts: etcd refuses one from Patroni).
        const subject = `/O=hastack/OU=${h.name}${issued.commonName === undefined ? '' : `/CN=${issued.commonName}`}`
        const csr = await ctx.conn.run(sh`openssl req -new -key ${keyPath} -subj ${subject}`, { check: true })
        const pem = await signRequest(ca, csr.stdout, names, v.tls_cert_days)
        await ctx.conn.put(certPath, pem, { mode: '0644', owner: 'root', group: 'root' })
      },
    }
  })
}

export const certificatesRole: Role<CertificatesVars> = {
  name: 'certificates',
  description: "Host keys and certificates signed by the stack's CA (hastack's own or yours), renewed by a re-run.",
  defaults: {
    ...shared.defaults,
    tls_cert_days: 365,
    tls_renew_margin_days: 30,
    tls_ca_days: 3650,
  },
  schema: {
    ...shared.schema,
    tls_cert_days: { type: 'integer', minimum: 2, maximum: 3650, description: 'Validity of a host certificate.' },
    tls_renew_margin_days: {
      type: 'integer',
      minimum: 1,
      maximum: 365,
      description: 'A certificate expiring within this many days is issued again by the next run (and audited).',
    },
    tls_ca_days: { type: 'integer', minimum: 30, description: "Validity of hastack's generated CA certificate." },
    tls_ca_cert_file: {
      type: 'string',
      pattern: '^[A-Za-z0-9_./~+-]+$',
      expected: 'a file path (letters, digits, _ . / ~ + -)',
      description: 'Your own CA certificate (PEM, relative to the inventory) instead of a generated CA.',
    },
    tls_ca_key_file: {
      type: 'string',
      pattern: '^[A-Za-z0-9_./~+-]+$',
      expected: 'a file path (letters, digits, _ . / ~ + -)',
      description: "Your own CA's unencrypted key (PEM, mode 0600, relative to the inventory), with tls_ca_cert_file.",
    },
  },
  validate: certificateSetupProblems,
  async tasks(h) {
    const v = h.vars
    if (!v.tls_enabled) return
    const ca = caFiles(h.inventory.file, v)
    const subject = `hastack CA ${path
      .basename(h.inventory.file)
      .replace(/\.ya?ml$/, '')
      .replace(/[^\w.-]/g, '_')}`
    if (!h.check) await h.once('certificate authority', () => ensureCa(ca, subject, v.tls_ca_days))
    const caPem = (() => {
      try {
        return readFileSync(ca.cert, 'utf8')
      } catch {
        return undefined
      }
    })()
    const keyPath = tlsFiles(v).key
    // One run of tasks: in order, each write before the next check, every check's reads in one round trip.
    await h.doAll([
      packages({ install: ['openssl'], name: 'Ensure openssl is installed' }),
      directory({ path: v.tls_dir, mode: '0755', name: 'Ensure the TLS directory exists' }),
      file({
        path: tlsFiles(v).ca,
        // Undefined only in check mode before the first converge made the CA: the file would be written.
        content: caPem ?? '',
        mode: '0644',
        name: 'Ensure the CA certificate is current',
      }),
      command({
        cmd: sh`umask 077 && openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out ${keyPath}`,
        creates: keyPath,
        name: 'Ensure the host key exists (generated on the host)',
      }),
      issuedCertificate(h, ca, caPem, { path: tlsFiles(v).cert, name: 'Ensure the host certificate is current' }),
      ...tlsServices(h).flatMap((service) => {
        const dir = tlsDirectory(v, service)
        return [
          group({ group: tlsGroup(service), system: true, name: `Ensure group ${tlsGroup(service)} exists` }),
          directory({ path: dir, mode: '0750', group: tlsGroup(service), name: `Ensure ${dir} exists` }),
          ...serviceFiles(service).map(({ file: name, sources, mode }) =>
            copyOnHost(
              sources.map((source) => tlsPath(v, source)),
              tlsPath(v, name, service),
              mode,
              'root',
              tlsGroup(service),
            ),
          ),
        ]
      }),
      ...(needsPgbackrestClientCertificate(h)
        ? [
            issuedCertificate(h, ca, caPem, {
              path: pgbackrestClientFiles(v).cert,
              commonName: h.name,
              name: "Ensure pgBackRest's client certificate (CommonName the host's name) is current",
            }),
          ]
        : []),
    ])
  },
}
