/**
 * Served-certificate facts: the serial of a host certificate on disk and the serial a TLS service presents
 * on its port, as `serialsCommand` prints them (`openssl x509 -serial` of the file, `openssl s_client` to the
 * port piped into `openssl x509 -serial`). A batch answers every such question of a host from one python3
 * process (SERVED_READER_PY, started by the evaluator in lib/facts/probes.ts) where that answer is provably
 * the command's, else it runs the command.
 */
import { sh } from '../connection/quote.ts'

/** Where a service presents its certificate, and the file it was configured with. */
export interface ServedCertificate {
  address: string
  port: number
  /** A protocol whose TLS starts inside it (`openssl s_client -starttls postgres`). */
  starttls?: 'postgres'
  /** The host certificate (every service's copy is made from it). */
  certFile: string
}

/** Prints the presented certificate's serial (`serial=...`); nothing when no TLS answer came. */
export function presentedSerialCommand(e: ServedCertificate): string {
  const starttls = e.starttls ? sh` -starttls ${e.starttls}` : ''
  const connect = sh`${`${e.address}:${String(e.port)}`}`
  return (
    `timeout 5 openssl s_client -connect ${connect}${starttls} </dev/null 2>/dev/null` +
    ' | openssl x509 -noout -serial 2>/dev/null'
  )
}

/** The serial of the certificate on disk (`serial=...`). */
export const onDiskSerialCommand = (e: ServedCertificate) =>
  `openssl x509 -noout -serial -in ${sh`${e.certFile}`} 2>/dev/null`

/** Prints the serials on disk and presented, one line each (empty when unknown); exits 0. */
export function serialsCommand(e: ServedCertificate): string {
  return `printf '%s\\n%s\\n' "$(${onDiskSerialCommand(e)})" "$(${presentedSerialCommand(e)})"`
}

/** The serials `serialsCommand` printed: on disk, presented. */
export function parseSerials(stdout: string): { onDisk: string; presented: string } {
  const [onDisk = '', presented = ''] = stdout.split('\n').map((l) => l.trim().replace(/^serial=/, ''))
  return { onDisk, presented }
}

/** The reader's whole run, and each connection's longest wait: inside the command's `timeout 5`. */
export const SERVED_READER_SECONDS = 4

/**
 * The python3 program that answers served-certificate questions side by side, one thread each. Arguments:
 * four per question (IPv4 address, port, `postgres` or empty, certificate file). Output: one line per
 * question, in order: the hex of `serialsCommand`'s exact output, or `-` where it cannot prove it.
 *
 * Proofs: a serial is printed by OpenSSL's own decoding (`_ssl._test_decode_cert`: PEM_read_bio_X509 and
 * i2a_ASN1_INTEGER, what `openssl x509 -serial` prints, from the same libssl3 as /usr/bin/openssl), one
 * line (at most 35 bytes: i2a breaks longer ones). On disk: a missing path prints nothing (openssl cannot
 * open it); a regular file of printable ASCII whose first `-----BEGIN ` line is a CERTIFICATE's (both read
 * that block first), else unproven (a DER file, another PEM block first, a directory). Presented: only a
 * completed handshake (s_client prints the peer certificate first); no SNI to an IP address, as s_client;
 * certificates are not verified, as s_client goes on after a failed verification; PostgreSQL's SSLRequest
 * answered by exactly `S`, as s_client's `-starttls postgres` requires. A connect error, a refusal, a
 * timeout or anything odd leaves the question to its command.
 */
export const SERVED_READER_PY = String.raw`
import os, re, socket, ssl, stat, sys, threading, time, _ssl

SECONDS = ${SERVED_READER_SECONDS}
SSL_REQUEST = bytes([0, 0, 0, 8, 4, 210, 22, 47])

def serial_line(path):
    number = _ssl._test_decode_cert(path)['serialNumber']
    if not re.fullmatch('-?(?:[0-9A-F]{2}){1,35}', number):
        raise ValueError('not one line')
    return 'serial=' + number

def on_disk(path):
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return ''
    if not stat.S_ISREG(st.st_mode) or st.st_size > 1048576:
        raise ValueError('not a plain file')
    with open(path, 'rb') as f:
        text = f.read()
    begin = re.search(b'^-----BEGIN .*$', text, re.M)
    if re.search(b'[^\n -~]', text) or not begin or begin.group(0) != b'-----BEGIN CERTIFICATE-----':
        raise ValueError('not a plain certificate file')
    return serial_line(path)

def presented(address, port, starttls):
    octet = '(?:0|[1-9][0-9]{0,2})'
    if not re.fullmatch(r'\.'.join([octet] * 4), address) or not re.fullmatch('[1-9][0-9]{0,4}', port):
        raise ValueError('not an IPv4 address and port')
    if starttls not in ('', 'postgres'):
        raise ValueError('starttls')
    with socket.create_connection((address, int(port)), timeout=SECONDS) as plain:
        if starttls == 'postgres':
            plain.sendall(SSL_REQUEST)
            if plain.recv(16384) != b'S':
                raise ValueError('no TLS')
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
        with context.wrap_socket(plain) as tls:
            der = tls.getpeercert(True)
    memory = os.memfd_create('served')
    try:
        os.write(memory, ssl.DER_cert_to_PEM_cert(der).encode())
        return serial_line('/proc/self/fd/%d' % memory)
    finally:
        os.close(memory)

answers = {}

def answer(i, address, port, starttls, cert_file):
    try:
        answers[i] = '%s\n%s\n' % (on_disk(cert_file), presented(address, port, starttls))
    except Exception:
        pass

questions = [sys.argv[i:i + 4] for i in range(1, len(sys.argv) - 3, 4)]
threads = [threading.Thread(target=answer, args=(i, *q), daemon=True) for i, q in enumerate(questions)]
for thread in threads:
    thread.start()
end = time.monotonic() + SECONDS
for thread in threads:
    thread.join(max(0, end - time.monotonic()))
done = dict(answers)
sys.stdout.write(''.join((done[i].encode().hex() if i in done else '-') + '\n' for i in range(len(questions))))
sys.stdout.flush()
os._exit(0)
`
