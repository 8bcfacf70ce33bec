/**
 * The result program's HTTP answers, apart from PostgreSQL so they can be tested with a fake
 * reader: `GET /results` the counts as JSON (`{"a":n,"b":n,"total":n}`), read from a replica and
 * from the primary when no replica answers; `GET /` the result page; `GET /healthz` 200 while a
 * database answers.
 */
import { pathOf, sendHtml, sendJson, type Handler } from './http.ts'
import { resultPage } from './pages.ts'
import type { Counts } from './db.ts'

export interface CountReader {
  counts(): Promise<Counts>
  healthy(): Promise<boolean>
}

/** The first of `sources` that answers, tried in order; throws the last error when none does. */
export async function firstAnswer<T>(sources: (() => Promise<T>)[]): Promise<T> {
  let last: unknown = new Error('no source to read from')
  for (const source of sources) {
    try {
      return await source()
    } catch (error) {
      last = error
    }
  }
  throw last
}

/** PostgreSQL's "undefined table": the worker has not created the votes table yet. */
const UNDEFINED_TABLE = '42P01'

export function resultHandler(reader: CountReader): Handler {
  return async (req, res) => {
    const path = pathOf(req)
    const readOnly = req.method === 'GET' || req.method === 'HEAD'
    if (path === '/results' && readOnly) {
      try {
        return sendJson(res, 200, await reader.counts())
      } catch (error) {
        const missing = (error as { code?: string }).code === UNDEFINED_TABLE
        console.error(`results unavailable: ${(error as Error).message}`)
        return sendJson(res, 503, { ok: false, error: missing ? 'no votes table yet' : 'no database answers' })
      }
    }
    if (path === '/healthz' && readOnly) {
      const up = await reader.healthy()
      return sendJson(res, up ? 200 : 503, { ok: up })
    }
    if (path === '/' && readOnly) return sendHtml(res, resultPage())
    sendJson(res, 404, { ok: false, error: 'not found' })
  }
}
