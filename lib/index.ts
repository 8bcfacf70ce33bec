/** The public API for playbooks and roles, from one import. */
export * from './types.ts'
export * from './tasks/index.ts'
export { playbook, type PlaybookSpec, type PlaybookResult } from './playbook.ts'
export { renderTemplate } from './template.ts'
export { sh, quote } from './connection/quote.ts'
