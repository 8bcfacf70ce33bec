/**
 * Quoting a value for the config format it is written into. Templates print
 * every variable through one of these (or as a word its format already makes
 * safe); none of them accepts a line break, so one value stays one line.
 */

function oneLine(value: string, where: string): string {
  const control = /[\u0000-\u001f\u007f-\u009f\u2028\u2029]/
  if (control.test(value)) throw new Error(`${where}: a value holds a control character`)
  return value
}

/** A YAML double-quoted scalar (JSON's string syntax, which YAML 1.1 and 1.2 both read back exactly). */
export function yamlString(value: string | number | boolean): string {
  if (typeof value !== 'string') return JSON.stringify(value)
  return JSON.stringify(oneLine(value, 'yamlString'))
}

/**
 * One HAProxy argument, strongly quoted: inside '…' HAProxy interprets nothing
 * (no `$` variables, no `#` comment, no `\` escapes), and a `'` is closed, escaped
 * and reopened (`'it'\''s'`), HAProxy joining adjacent quoted parts into one word.
 */
export function haproxyWord(value: string | number): string {
  return `'${oneLine(String(value), 'haproxyWord').replaceAll("'", `'\\''`)}'`
}

/**
 * One value of a systemd EnvironmentFile, double-quoted: inside "…" systemd turns `\"`, `\\`,
 * `` \` `` and `\$` back into the character and takes everything else literally (no expansion,
 * no comment), so any one-line value arrives in the program's environment exactly.
 */
export function systemdEnvValue(value: string | number): string {
  return `"${oneLine(String(value), 'systemdEnvValue').replace(/["\\`$]/g, (c) => `\\${c}`)}"`
}
