/**
 * keepalived: the VIP clients use (`vip_address`), held by one haproxy host at a time. VRRP runs
 * version 3 with unicast peers (the other haproxy hosts: no multicast needed; adverts from any other
 * source refused), adverts every half second, and every host in BACKUP state
 * with `nopreempt`: the first host of the group takes the VIP at start, and a host that returns never
 * takes it back, so the VIP moves once per failure. A track script asks the local HAProxy for
 * `/healthz` on its loopback health listener every second; two failures put the instance in FAULT
 * (weight 0), which gives the VIP up at once, even under nopreempt (a mere priority drop would not
 * move it). The role runs after haproxy, which lets itself bind the VIP before holding it and has
 * reloaded onto the health listener by the time this role writes the script that asks it.
 * keepalived is reloaded when its configuration changes. keepalived 2.2.7's config test (`-t`) never
 * returns when the file defines a vrrp_script (seen in the lab, 2026-11-30), so the file is not run
 * through it; every value it prints is validated first. Without `vip_address` the role does nothing.
 */
import type { Role, Vars } from '../../lib/types.ts'
import { service, template, user } from '../../lib/tasks/index.ts'
import { installWithoutStarting } from '../common/apt.ts'
import { CLIENT_ENTRY_VARS, groupMembers, sharedVars, type StackVars } from '../stack.ts'
import { keepalivedView } from './render.ts'

const shared = sharedVars(...CLIENT_ENTRY_VARS)

export interface KeepalivedVars extends Vars, Pick<StackVars, keyof typeof shared.schema> {
  vip_interface: string
  vip_vrrp_id: number
}

const CONFIG = '/etc/keepalived/keepalived.conf'
const CHECK_SCRIPT = '/etc/keepalived/hastack-check-haproxy'
/** The unprivileged user keepalived runs the track script as (`enable_script_security`). */
const SCRIPT_USER = 'keepalived_script'

/** Problems of the VIP settings across the haproxy hosts: one VIP and one VRRP id for all, used by no host. */
export function vipProblems(inventory: Parameters<NonNullable<Role['validate']>>[0]): string[] {
  const members = groupMembers(inventory, 'haproxy')
  const vars = members.map((name) => ({ name, v: inventory.hosts.get(name)!.vars }))
  const withVip = vars.filter(({ v }) => v.vip_address !== undefined)
  if (withVip.length === 0) return []
  const errors: string[] = []
  const list = (key: string) => vars.map(({ name, v }) => `${name}: ${v[key] ?? 'unset'}`).join(', ')
  if (new Set(vars.map(({ v }) => v.vip_address)).size > 1)
    errors.push(`the haproxy hosts must share one vip_address (${list('vip_address')})`)
  if (new Set(vars.map(({ v }) => v.vip_vrrp_id ?? keepalivedRole.defaults.vip_vrrp_id)).size > 1)
    errors.push(`the haproxy hosts must share one vip_vrrp_id (${list('vip_vrrp_id')})`)
  for (const [name, host] of inventory.hosts)
    for (const { v } of withVip)
      if (host.vars.address === v.vip_address)
        errors.push(`vip_address ${v.vip_address} is the address of host ${name}: pick an address no host uses`)
  return [...new Set(errors)]
}

export const keepalivedRole: Role<KeepalivedVars> = {
  name: 'keepalived',
  description: 'A VIP on the haproxy hosts (keepalived, VRRP over unicast, no preemption) when `vip_address` is set.',
  defaults: {
    ...shared.defaults,
    vip_interface: '',
    vip_vrrp_id: 51,
  },
  schema: {
    ...shared.schema,
    vip_interface: {
      type: 'string',
      pattern: '^([A-Za-z0-9_.-]{1,15})?$',
      description: "Interface that carries the VIP; empty: the one that holds the host's address.",
    },
    vip_vrrp_id: {
      type: 'integer',
      minimum: 1,
      maximum: 255,
      description: 'VRRP virtual router id of the VIP: unique among the VRRP routers of its network.',
    },
  },
  validate: vipProblems,
  handlers: {
    'Reload keepalived': async (h) => {
      await h.do(service({ service: 'keepalived', state: 'reloaded', name: 'Reload keepalived' }))
    },
  },
  async tasks(h) {
    if (h.vars.vip_address === undefined) return
    await installWithoutStarting(h, ['keepalived'], 'keepalived')
    const view = keepalivedView(h)
    await h.doAll([
      user({
        user: SCRIPT_USER,
        system: true,
        shell: '/usr/sbin/nologin',
        name: "Ensure the user of keepalived's check exists",
      }),
      template({
        src: 'keepalived/check-haproxy.ejs',
        dest: CHECK_SCRIPT,
        vars: { keepalived: view },
        mode: '0755',
        name: 'Ensure the HAProxy check of keepalived is current',
      }),
      template({
        src: 'keepalived/keepalived.conf.ejs',
        dest: CONFIG,
        vars: { keepalived: { ...view, check_script: CHECK_SCRIPT, script_user: SCRIPT_USER } },
        mode: '0600',
        notify: 'Reload keepalived',
        name: 'Ensure the keepalived configuration is current',
      }),
      service({
        service: 'keepalived',
        enabled: true,
        state: 'started',
        name: 'Ensure keepalived is enabled and started',
      }),
    ])
  },
}
