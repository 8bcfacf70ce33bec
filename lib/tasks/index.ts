/** Every task a role may use, from one import. */
export { packages } from './apt.ts'
export { file, template, directory, link, absent, lineInFile, editLines } from './files.ts'
export { user, group } from './users.ts'
export { systemdUnit, service } from './systemd.ts'
export { command } from './command.ts'
export { waitFor, waitUntil, delay, type PollOptions } from './wait.ts'
export { fetchFile } from './fetch.ts'
export { defineTask, noChange, type TaskOptions } from './common.ts'
