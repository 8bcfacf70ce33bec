/**
 * The one python3 process that answers a batch's TLS questions side by side, a thread each: the serials of
 * served certificates (`serialsCommand`, lib/facts/served.ts) and HTTPS reads verified with a CA file
 * (`httpGetCommand`, `urlReadyCommand` and `healthyCommand`, lib/facts/http.ts). The evaluator
 * (lib/facts/probes.ts) starts it only where the commands' own tools are the system's, and runs the command
 * of every question it leaves.
 */

/** The reader's whole run, and each connection's longest wait: inside `serialsCommand`'s `timeout 5`. */
export const TLS_READER_SECONDS = 4

/** A URL wait's or a health read's answer counts only when it came within this: inside `curl -m 2`. */
export const URL_READY_SECONDS = 1.5

/**
 * The program. Arguments: five per question, its letter then four values: `x` (served certificate: IPv4
 * address, port, `postgres` or empty, certificate file), `o` (GET: URL, CA file), `y` (URL ready: URL, CA
 * file) or `v` (etcd health: the URLs' count and the URLs, separated by spaces; CA file, client certificate,
 * its key). Output: one line per question, in order: the command's exit code and the hex of its exact output,
 * or `-` where it cannot prove them.
 *
 * Served certificates: a serial is printed by OpenSSL's own decoding (`_ssl._test_decode_cert`:
 * PEM_read_bio_X509 and i2a_ASN1_INTEGER, what `openssl x509 -serial` prints, from the same libssl3 as
 * /usr/bin/openssl), one line (at most 35 bytes: i2a breaks longer ones). On disk: a missing path prints
 * nothing (openssl cannot open it); a regular file of printable ASCII whose first `-----BEGIN ` line is a
 * CERTIFICATE's (both read that block first), else unproven (a DER file, another PEM block first, a
 * directory). Presented: only a completed handshake (s_client prints the peer certificate first); no SNI to
 * an IP address, as s_client; certificates are not verified, as s_client goes on after a failed
 * verification; PostgreSQL's SSLRequest answered by exactly `S`, as s_client's `-starttls postgres` requires.
 *
 * HTTPS reads: only `https://IPV4:PORT/plain-path`; the peer verified against the CA file alone and its
 * IP address (curl trusts at least that CA and checks the same address), no SNI to an IP address, as curl;
 * one GET with curl's Host and Accept headers; only a complete answer with status 200 or 503 (no redirect
 * for `-L` to follow, none that `-f` would treat otherwise), for the GET with a body: the body, a newline
 * and the status, exit 0; for the URL wait exit 0 on 200 and 1 on 503 (grep '^2'), nothing printed. The
 * health reads present the client certificate as curl's `--cert`/`--key` do and go member by member as the
 * `&&` chain does, each `/health` answer printable ASCII: exit 0 when every one is 200 and holds
 * `"health":"true"` (grep -qF), 1 at the first that is 503 (curl -f prints nothing) or does not; nothing
 * printed. A wait or a health read counts only when it came within URL_READY_SECONDS.
 *
 * A connect error, a refusal, a timeout or anything odd leaves the question to its command.
 */
export const TLS_READER_PY = String.raw`
import http.client, os, re, socket, ssl, stat, sys, threading, time, _ssl

SECONDS = ${TLS_READER_SECONDS}
URL_READY_SECONDS = ${URL_READY_SECONDS}
SSL_REQUEST = bytes([0, 0, 0, 8, 4, 210, 22, 47])
IPV4 = r'\.'.join(['(?:0|[1-9][0-9]{0,2})'] * 4)
HTTPS_URL = re.compile('https://(%s):([1-9][0-9]{0,4})(/[A-Za-z0-9/._-]*)?' % IPV4)

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

# One context per kind of connection, made once for the batch and shared by its threads (making an OpenSSL 3
# context and loading its CA file cost more than a handshake); each is set up whole before any thread uses it.
contexts = {}
contexts_made = threading.Lock()

def shared_context(key, make):
    with contexts_made:
        if key not in contexts:
            contexts[key] = make()
        return contexts[key]

def unverified():
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    return context

def unverified_context():
    return shared_context(('unverified',), unverified)

def verifying_context(ca_file, client):
    def make():
        context = ssl.create_default_context(cafile=ca_file)
        if client:
            context.load_cert_chain(*client)
        return context
    return shared_context(('verifying', ca_file, tuple(client or ())), make)

def presented(address, port, starttls):
    if not re.fullmatch(IPV4, address) or not re.fullmatch('[1-9][0-9]{0,4}', port):
        raise ValueError('not an IPv4 address and port')
    if starttls not in ('', 'postgres'):
        raise ValueError('starttls')
    with socket.create_connection((address, int(port)), timeout=SECONDS) as plain:
        if starttls == 'postgres':
            plain.sendall(SSL_REQUEST)
            if plain.recv(16384) != b'S':
                raise ValueError('no TLS')
        with unverified_context().wrap_socket(plain) as tls:
            der = tls.getpeercert(True)
    memory = os.memfd_create('served')
    try:
        os.write(memory, ssl.DER_cert_to_PEM_cert(der).encode())
        return serial_line('/proc/self/fd/%d' % memory)
    finally:
        os.close(memory)

def served(address, port, starttls, cert_file):
    return 0, ('%s\n%s\n' % (on_disk(cert_file), presented(address, port, starttls))).encode()

def https_get(url, ca_file, seconds, client=None):
    match = HTTPS_URL.fullmatch(url)
    if not match or not ca_file:
        raise ValueError('not a plain https URL with its CA file')
    context = verifying_context(ca_file, client)
    connection = http.client.HTTPSConnection(match[1], int(match[2]), timeout=seconds, context=context)
    try:
        connection.putrequest('GET', match[3] or '/', skip_accept_encoding=True)
        connection.putheader('Accept', '*/*')
        connection.endheaders()
        response = connection.getresponse()
        body = response.read()
    finally:
        connection.close()
    if response.status not in (200, 503):
        raise ValueError('another status')
    return response.status, body

def get(url, ca_file, *_):
    status, body = https_get(url, ca_file, SECONDS)
    if not body:
        raise ValueError('no body')
    return 0, body + b'\n' + str(status).encode()

def ready(url, ca_file, *_):
    started = time.monotonic()
    status, _ = https_get(url, ca_file, URL_READY_SECONDS)
    if time.monotonic() - started > URL_READY_SECONDS:
        raise ValueError('late')
    return (0 if status == 200 else 1), b''

def healthy(urls, ca_file, cert_file, key_file):
    started = time.monotonic()
    if not cert_file or not key_file:
        raise ValueError('no client certificate')
    count, *urls = urls.split(' ')
    if count != str(len(urls)):
        raise ValueError('a URL with a space')
    code = 0
    for url in urls:
        status, body = https_get(url + '/health', ca_file, URL_READY_SECONDS, (cert_file, key_file))
        if re.search(b'[^\t\n\r -~]', body):
            raise ValueError('not plain text')
        if status != 200 or b'"health":"true"' not in body:
            code = 1
            break
    if time.monotonic() - started > URL_READY_SECONDS:
        raise ValueError('late')
    return code, b''

KINDS = {'x': served, 'o': get, 'y': ready, 'v': healthy}
answers = {}

def answer(i, kind, *values):
    try:
        answers[i] = KINDS[kind](*values)
    except Exception:
        pass

questions = [sys.argv[i:i + 5] for i in range(1, len(sys.argv) - 4, 5)]
threads = [threading.Thread(target=answer, args=(i, *q), daemon=True) for i, q in enumerate(questions)]
for thread in threads:
    thread.start()
end = time.monotonic() + SECONDS
for thread in threads:
    thread.join(max(0, end - time.monotonic()))
done = dict(answers)
lines = ('%d %s' % (done[i][0], done[i][1].hex()) if i in done else '-' for i in range(len(questions)))
sys.stdout.write(''.join(line + '\n' for line in lines))
sys.stdout.flush()
os._exit(0)
`
