/**
 * HTTP facts read with curl on the host: a GET's body and status (`httpGetCommand`, Patroni's API reads),
 * whether a URL answers 2xx (`urlReadyCommand`, waitFor's first try) and whether every etcd member's `/health`
 * says healthy (`healthyCommand`). A batch answers the HTTPS ones with a CA file from the one python3 process
 * that reads a host's TLS questions (lib/facts/tls-reader.ts) where that answer is provably curl's, else it
 * runs the command.
 */
import { quote, sh } from '../connection/quote.ts'

/**
 * A GET without credentials as one command line (the URL and the CA file: no secret): prints the body, a
 * newline and the HTTP status (`000`: no answer). An https URL needs its CA file.
 */
export function httpGetCommand(url: string, caFile?: string): string {
  if (url.startsWith('https:') && caFile === undefined) throw new Error(`${url}: an https call needs the CA file`)
  const ca = url.startsWith('https:') ? ['--cacert', caFile!] : []
  return sh`curl -sS -m 10 ${[...ca, '-w', '\\n%{http_code}', '--url', url]}`
}

/** Exits 0 when the URL answers 2xx within 2 s (curl, python3 where curl is missing); the CA file verifies https. */
export function urlReadyCommand(url: string, caFile?: string): string {
  // curl (the common role installs it) starts in a few milliseconds; python3, the fallback, in tens.
  const ca = caFile ? ` --cacert ${quote(caFile)}` : ''
  const curl = `curl -sSL -o /dev/null -m 2${ca} -w '%{http_code}' ${quote(url)} 2>/dev/null | grep -q '^2'`
  const context = caFile ? `, context=ssl.create_default_context(cafile=${JSON.stringify(caFile)})` : ''
  const py = [
    'import ssl,sys,urllib.request',
    'try:',
    `  r=urllib.request.urlopen(${JSON.stringify(url)}, timeout=2${context})`,
    '  sys.exit(0 if 200<=r.status<300 else 1)',
    'except Exception:',
    '  sys.exit(1)',
  ].join('\n')
  return `if command -v curl >/dev/null 2>&1; then ${curl}; else python3 -c ${quote(py)}; fi`
}

/** The TLS files a client verifies the server with and presents (etcd's client-cert-auth asks for one). */
export interface ClientTls {
  caFile: string
  certFile: string
  keyFile: string
}

/** Exits 0 when every URL's `/health` answers 2xx with `"health":"true"` (curl -f, each within 2 s, in order). */
export function healthyCommand(urls: readonly string[], tls?: ClientTls): string {
  const flags = tls ? sh` --cacert ${tls.caFile} --cert ${tls.certFile} --key ${tls.keyFile}` : ''
  return urls
    .map((url) => sh`curl -fsS -m 2` + flags + sh` ${`${url}/health`} | grep -qF '"health":"true"'`)
    .join(' && ')
}
