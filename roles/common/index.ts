/**
 * common: what every host of the stack needs before its services: its name and
 * the names of its peers in /etc/hosts, the apt proxy when the inventory sets
 * one, the time zone, kernel settings and open-file limits a database host
 * needs, and a few base packages.
 */
import type { Role, Task, Vars } from '../../lib/types.ts'
import { command, file, link, packages, service, template } from '../../lib/tasks/index.ts'
import { sh } from '../../lib/connection/quote.ts'
import { hostsEntries, sysctlLines } from './render.ts'

export interface CommonVars extends Vars {
  common_packages: string[]
  common_sysctl: Record<string, string | number>
  common_nofile: number
  common_manage_hostname: boolean
  timezone: string
}

export const commonRole: Role<CommonVars> = {
  name: 'common',
  description: 'Host name, /etc/hosts, apt proxy, time zone, sysctl, limits and base packages.',
  defaults: {
    common_packages: ['ca-certificates', 'curl', 'less', 'procps', 'tzdata'],
    common_sysctl: {
      'vm.swappiness': 1,
      'net.core.somaxconn': 1024,
      'net.ipv4.tcp_keepalive_time': 60,
      'net.ipv4.tcp_keepalive_intvl': 10,
      'net.ipv4.tcp_keepalive_probes': 6,
    },
    common_nofile: 65536,
    common_manage_hostname: true,
    timezone: 'Etc/UTC',
  },
  schema: {
    common_packages: {
      type: 'array',
      items: { type: 'string', format: 'debian-package' },
      description: 'Base packages installed on every host.',
    },
    common_sysctl: {
      type: 'object',
      additionalProperties: { type: ['string', 'number'], format: 'sysctl-value' },
      propertyNames: { format: 'sysctl-key' },
      description:
        'Kernel settings written to /etc/sysctl.d/60-hastack.conf (applied by systemd-sysctl; containers skip them).',
    },
    common_nofile: {
      type: 'integer',
      minimum: 1024,
      description: 'Open-file limit for every user (/etc/security/limits.d).',
    },
    common_manage_hostname: { type: 'boolean', description: 'Set the host name to the inventory name.' },
  },
  handlers: {
    'Apply sysctl settings': (h) =>
      h.do(service({ service: 'systemd-sysctl', state: 'restarted', name: 'Apply the sysctl settings' })),
  },
  async tasks(h) {
    const v = h.vars
    // Independent of each other: their checks are gathered in one round trip (writes stay in this order).
    const tasks: Task[] = []
    if (v.common_manage_hostname) {
      tasks.push(
        file({ path: '/etc/hostname', content: `${h.name}\n`, name: 'Ensure /etc/hostname names the host' }),
        command({
          cmd: sh`hostname ${h.name}`,
          unless: { kind: 'hostname', name: h.name },
          name: 'Ensure the running host name is the inventory name',
        }),
      )
    }
    tasks.push(
      template({
        src: 'common/hosts.ejs',
        dest: '/etc/hosts',
        vars: { hosts_entries: hostsEntries(h) },
        name: 'Ensure /etc/hosts names every host of the inventory',
      }),
    )
    const proxy = '/etc/apt/apt.conf.d/01hastack-proxy'
    if (typeof v.apt_proxy === 'string') {
      tasks.push(
        file({
          path: proxy,
          content: `// Managed by hastack.\nAcquire::http::Proxy "${v.apt_proxy}";\n`,
          name: 'Ensure apt uses the inventory proxy',
        }),
      )
    }
    tasks.push(
      packages({ install: v.common_packages, name: 'Ensure the base packages are installed' }),
      link({
        path: '/etc/localtime',
        target: `/usr/share/zoneinfo/${v.timezone}`,
        name: `Ensure the time zone is ${v.timezone}`,
      }),
      file({ path: '/etc/timezone', content: `${v.timezone}\n`, name: 'Ensure /etc/timezone names the time zone' }),
      template({
        src: 'common/sysctl.conf.ejs',
        dest: '/etc/sysctl.d/60-hastack.conf',
        vars: { sysctl_lines: sysctlLines(h) },
        notify: 'Apply sysctl settings',
        name: 'Ensure the kernel settings are current',
      }),
      template({
        src: 'common/limits.conf.ejs',
        dest: '/etc/security/limits.d/60-hastack.conf',
        name: 'Ensure the open-file limits are current',
      }),
    )
    await h.doAll(tasks)
  },
}
