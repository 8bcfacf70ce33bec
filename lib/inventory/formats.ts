/**
 * The value formats a variable's schema can declare (`format: 'debian-package'`),
 * each with the words an error uses, and the one rule every string obeys whatever
 * its schema: no newline, NUL or other control character, anywhere in a value
 * (nested maps and lists included), because every value may end up on one line
 * of a config file or a command.
 */
import { existsSync, statSync } from 'node:fs'
import path from 'node:path'

export interface ValueFormat {
  /** What the value must be, completing "must be …". */
  expected: string
  test(value: string): boolean
}

const LABEL = '[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?'
const OCTET = '(?:25[0-5]|2[0-4]\\d|1\\d\\d|[1-9]?\\d)'
export const IPV4 = new RegExp(`^${OCTET}(?:\\.${OCTET}){3}$`)
/** A host name: dot-separated DNS labels, never starting with `-`, never all digits and dots. */
const HOSTNAME = new RegExp(`^(?![0-9.]+$)${LABEL}(?:\\.${LABEL})*$`)
const ZONEINFO = '/usr/share/zoneinfo'
const TIMEZONE = /^[A-Za-z0-9_+-]+(?:\/[A-Za-z0-9_+-]+)*$/

/** Control characters (C0, DEL, C1) and the Unicode line and paragraph separators. */
const CONTROL = /[\u0000-\u001f\u007f-\u009f\u2028\u2029]/

/** A readable name of the first control character of a string, or undefined when it has none. */
export function controlCharacter(value: string): string | undefined {
  const found = CONTROL.exec(value)?.[0]
  if (found === undefined) return undefined
  const names: Record<string, string> = {
    '\n': 'a newline',
    '\r': 'a carriage return',
    '\t': 'a tab',
    '\u0000': 'a NUL byte',
  }
  return names[found] ?? `the control character U+${found.charCodeAt(0).toString(16).toUpperCase().padStart(4, '0')}`
}

/** A timezone name: a file under /usr/share/zoneinfo when this machine has that directory, else by pattern. */
export function isTimezone(value: string, zoneinfo = ZONEINFO): boolean {
  if (!TIMEZONE.test(value) || value.split('/').some((part) => part === '.' || part === '..')) return false
  if (!existsSync(zoneinfo)) return true
  const file = path.join(zoneinfo, value)
  return existsSync(file) && statSync(file).isFile()
}

function isHttpUrl(value: string): boolean {
  if (!/^https?:\/\/[^\s"'\\;{}]+$/.test(value)) return false
  try {
    const url = new URL(value)
    return (url.protocol === 'http:' || url.protocol === 'https:') && url.hostname !== ''
  } catch {
    return false
  }
}

function isCidr(value: string): boolean {
  const [address, bits, ...rest] = value.split('/')
  return rest.length === 0 && IPV4.test(address ?? '') && /^\d{1,2}$/.test(bits ?? '') && Number(bits) <= 32
}

/** One field of a calendar event: `*` or numbers, with `,` lists, `..` ranges and a `/` repetition. */
const CALENDAR_FIELD = '(?:\\*|\\d{1,4}(?:(?:,|\\.\\.)\\d{1,4})*)(?:/\\d{1,4})?'
const WEEKDAY = '(?:Mon|Tue|Wed|Thu|Fri|Sat|Sun)'
const CALENDAR_EVENT = new RegExp(
  `^(?:${WEEKDAY}(?:(?:,|\\.\\.)${WEEKDAY})* )?` +
    `(?:(?:${CALENDAR_FIELD}-)?${CALENDAR_FIELD}[-~]${CALENDAR_FIELD} )?` +
    `${CALENDAR_FIELD}:${CALENDAR_FIELD}(?::${CALENDAR_FIELD})?(?: UTC)?$`,
)
const CALENDAR_SHORTHANDS = ['minutely', 'hourly', 'daily', 'weekly', 'monthly', 'quarterly', 'semiannually', 'yearly']

/** A systemd calendar event: a shorthand (`daily`) or `[weekdays] [date] time [UTC]` of numbers and `*`. */
export function isCalendarEvent(value: string): boolean {
  return CALENDAR_SHORTHANDS.includes(value) || CALENDAR_EVENT.test(value)
}

/** Every format a schema may name, by name. */
export const FORMATS: Record<string, ValueFormat> = {
  word: {
    expected: 'a word of letters, digits, `_`, `.` and `-`, starting with a letter or digit',
    test: (v) => /^[A-Za-z0-9][A-Za-z0-9_.-]*$/.test(v),
  },
  hostname: {
    expected: 'a host name (letters, digits and `-` in dot-separated labels)',
    test: (v) => HOSTNAME.test(v),
  },
  cidr: { expected: 'an IPv4 network such as 10.0.0.0/24', test: isCidr },
  ipv4: { expected: 'an IPv4 address such as 10.0.0.200', test: (v) => IPV4.test(v) },
  'absolute-path': {
    expected: 'an absolute path of letters, digits, `_`, `.` and `-` (no `..`)',
    test: (v) => /^(?:\/[A-Za-z0-9_.-]+)+\/?$/.test(v) && !v.split('/').some((p) => p === '..' || p === '.'),
  },
  'http-url': { expected: 'an http:// or https:// URL (no spaces, quotes, `;` or braces)', test: isHttpUrl },
  'debian-package': {
    expected: 'a Debian package name (lower-case letters, digits, `+`, `-`, `.`; at least 2 characters)',
    test: (v) => /^[a-z0-9][a-z0-9+.-]+$/.test(v),
  },
  timezone: {
    expected: 'a time zone under /usr/share/zoneinfo, such as Etc/UTC or Europe/Paris',
    test: (v) => isTimezone(v),
  },
  'sysctl-key': {
    expected: 'a sysctl name such as net.core.somaxconn',
    test: (v) => /^[a-z0-9_]+(?:\.[a-z0-9_-]+)+$/.test(v),
  },
  'sysctl-value': {
    expected: 'a sysctl value (letters, digits, spaces, `_`, `.`, `:`, `/`, `,`, `-`)',
    test: (v) => /^[A-Za-z0-9_.:/,-]+(?: [A-Za-z0-9_.:/,-]+)*$/.test(v),
  },
  /** Free text on one line: templates write it quoted for their format (yamlString, haproxyWord). */
  'one-line': {
    expected: 'one line of printable characters',
    test: (v) => v.length > 0 && controlCharacter(v) === undefined,
  },
  /** A systemd timer's `OnCalendar=` (systemd.time(7)); the host checks it again with `systemd-analyze calendar`. */
  'systemd-calendar': {
    expected: 'a systemd calendar event such as daily, hourly, Mon..Fri 02:00 or *-*-* 03:30:00',
    test: isCalendarEvent,
  },
  /** A value on a `key=value` line of an ini-style file (pgBackRest): one word, nothing to quote or strip. */
  'config-word': {
    expected: 'one word of printable characters: no blanks, quotes (\' ") or backslashes',
    test: (v) => /^[^\s'"\\]+$/.test(v) && controlCharacter(v) === undefined,
  },
  /**
   * Redis and Sentinel config words. Sentinel rewrites its file with some values
   * unquoted (`sentinel auth-pass`), and HAProxy's check sends them inline, so
   * spaces, quotes and backslashes are refused rather than escaped.
   */
  'redis-config-string': {
    expected: 'a Redis config word: no spaces, quotes (\' ") or backslashes',
    test: (v) => /^[^\s'"\\]+$/.test(v) && controlCharacter(v) === undefined,
  },
}

type StringFormat = { type: 'string'; validate: (v: string) => boolean }

/** Register every format with an ajv instance. */
export function addFormats(ajv: { addFormat(name: string, format: StringFormat): unknown }): void {
  for (const [name, format] of Object.entries(FORMATS)) ajv.addFormat(name, { type: 'string', validate: format.test })
}

/** Where a value holds a control character: the key path inside the value and which character. */
export interface ControlFinding {
  keys: (string | number)[]
  character: string
  /** True when the character is in a map key rather than a value. */
  inKey: boolean
}

/** Every control character in a value, its nested maps' keys and values, and its lists' items (bounded depth). */
export function findControlCharacters(value: unknown, keys: (string | number)[] = [], depth = 0): ControlFinding[] {
  if (typeof value === 'string') {
    const character = controlCharacter(value)
    return character ? [{ keys, character, inKey: false }] : []
  }
  if (depth > 32 || value === null || typeof value !== 'object') return []
  const found: ControlFinding[] = []
  if (Array.isArray(value)) {
    value.forEach((item, i) => found.push(...findControlCharacters(item, [...keys, i], depth + 1)))
  } else {
    for (const [key, item] of Object.entries(value)) {
      const character = controlCharacter(key)
      if (character) found.push({ keys: [...keys, key], character, inKey: true })
      found.push(...findControlCharacters(item, [...keys, key], depth + 1))
    }
  }
  return found
}
