/**
 * One host's nftables ruleset, rendered from its exposures (exposure.ts): loopback and established
 * traffic, ICMP, then each service port accepted from the addresses allowed to reach it; everything
 * else dropped by the input chain's policy. Only hastack's own table (`inet hastack`) is replaced, in
 * one transaction: the file declares the table, deletes it and defines it again, so `nft -f` swaps the
 * whole ruleset at once or, rejected, leaves the running one. Pure: exposures in, text out.
 */
import type { Exposure } from './exposure.ts'

export const NFT_TABLE = 'hastack'
/** The first line of the file after the interpreter line: marks a file as hastack's. */
export const RULESET_MARKER = '# Managed by hastack (nftables role): every port not listed here is dropped.'

export interface RulesetInput {
  exposures: Exposure[]
  /** A host's address on the cluster network, by inventory name. */
  addressOf: (host: string) => string
  /** The control machine's addresses or networks (SSH and the operator's pages). */
  control: string[]
}

/** The addresses an exposure accepts, sorted and without repeats; empty: nobody (the rule is left out). */
export function allowedAddresses(exposure: Exposure, input: RulesetInput): string[] {
  const { sources } = exposure
  const addresses = [
    ...sources.hosts.map(input.addressOf),
    ...sources.networks,
    ...(sources.control ? input.control : []),
  ]
  return [...new Set(addresses)].sort()
}

/** One accept rule, or a comment when nobody may connect. */
function ruleOf(exposure: Exposure, input: RulesetInput): string {
  const comment = `comment "${exposure.service}"`
  const match =
    exposure.protocol === 'vrrp' ? 'ip protocol vrrp' : `${exposure.protocol} dport ${String(exposure.port)}`
  if (exposure.sources.anywhere) return `${match} accept ${comment}`
  const addresses = allowedAddresses(exposure, input)
  if (addresses.length === 0) return `# ${exposure.service}: no host may connect`
  return `${match} ip saddr { ${addresses.join(', ')} } accept ${comment}`
}

/** The whole file for `nft -f`. */
export function renderRuleset(input: RulesetInput): string {
  const rules = input.exposures.map((e) => `    ${ruleOf(e, input)}`)
  return [
    '#!/usr/sbin/nft -f',
    RULESET_MARKER,
    `table inet ${NFT_TABLE}`,
    `delete table inet ${NFT_TABLE}`,
    `table inet ${NFT_TABLE} {`,
    '  chain input {',
    '    type filter hook input priority filter; policy drop;',
    '    iif "lo" accept',
    '    ct state established,related accept',
    '    ct state invalid drop',
    '    meta l4proto { icmp, ipv6-icmp } accept',
    ...rules,
    '  }',
    '}',
    '',
  ].join('\n')
}
