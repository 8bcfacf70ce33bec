/**
 * YAML files with their line numbers: parse a file once, keep the document and
 * its LineCounter, and answer "on which line is this key path set?" so every
 * error and every variable origin can point at the user's own line.
 */
import { readFile } from 'node:fs/promises'
import path from 'node:path'
import { isMap, isPair, isScalar, isSeq, LineCounter, parseDocument, type Document, type Node } from 'yaml'
import { InputError, type Origin } from '../types.ts'

export type KeyPath = (string | number)[]

export interface YamlSource {
  /** Absolute path. */
  file: string
  /** Path shown to the user: relative to the working directory when inside it. */
  display: string
  doc: Document
  lineCounter: LineCounter
  /** The plain JavaScript value of the document (null for an empty file). */
  value: unknown
}

/** A path as the user should read it: relative to the working directory when below it. */
export function displayPath(file: string): string {
  const rel = path.relative(process.cwd(), file)
  return rel && !rel.startsWith('..') && !path.isAbsolute(rel) ? rel : file
}

/** `all.children.db.vars.patroni_ttl`, with `[0]` for sequence items. */
export function formatKeyPath(keys: KeyPath): string {
  return keys.map((k, i) => (typeof k === 'number' ? `[${k}]` : i === 0 ? k : `.${k}`)).join('')
}

/** Parse YAML text; a syntax error becomes an InputError with file and line (never the source snippet). */
export function parseYaml(file: string, text: string): YamlSource {
  const lineCounter = new LineCounter()
  const doc = parseDocument(text, { lineCounter, prettyErrors: false, uniqueKeys: true })
  const display = displayPath(file)
  const error = doc.errors[0]
  if (error) {
    const pos = lineCounter.linePos(error.pos[0])
    // The parser's message can quote the offending line, which may hold a secret: keep its first sentence only.
    const reason = error.message.split(/ at line \d+|\n/)[0]
    throw new InputError(`YAML syntax error: ${reason}`, { file: display, line: pos.line, column: pos.col })
  }
  return { file, display, doc, lineCounter, value: doc.toJS() ?? null }
}

/** Read and parse a YAML file. */
export async function readYaml(file: string): Promise<YamlSource> {
  return parseYaml(file, await readFile(file, 'utf8'))
}

/**
 * Where a key path is set in a source: the line of the deepest key (or sequence
 * item) that exists along the path, so a missing leaf still points near it.
 */
export function originOf(source: YamlSource, keys: KeyPath, keyLabel: KeyPath = keys): Origin {
  let node: unknown = source.doc.contents
  let offset = (node as Node | null)?.range?.[0] ?? 0
  for (const key of keys) {
    if (isMap(node)) {
      const pair = node.items.find((p) => isPair(p) && String(isScalar(p.key) ? p.key.value : p.key) === String(key))
      if (!pair) break
      offset = (pair.key as Node | null)?.range?.[0] ?? offset
      node = pair.value
    } else if (isSeq(node) && typeof key === 'number' && node.items[key]) {
      node = node.items[key]
      offset = (node as Node).range?.[0] ?? offset
    } else break
  }
  const pos = source.lineCounter.linePos(offset)
  return { file: source.display, line: pos.line, column: pos.col, key: formatKeyPath(keyLabel) || undefined }
}
