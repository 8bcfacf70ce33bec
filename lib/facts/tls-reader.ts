/**
 * The one python3 process that answers a batch's TLS questions side by side, a thread each: the serials of
 * served certificates (`serialsCommand`, lib/facts/served.ts), HTTPS reads verified with a CA file and plain
 * HTTP reads (`httpGetCommand`, `urlReadyCommand` and `healthyCommand`, lib/facts/http.ts). The evaluator
 * (lib/facts/probes.ts) starts it only where the commands' own tools are the system's, and runs the command
 * of every question it leaves. It imports only C modules (those under ssl, socket, threading and os), and
 * makes a read several questions share once: a member's `/health` that more than one health gate lists.
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
 * HTTP reads: only `https://IPV4:PORT/plain-path`, the peer verified against the CA file alone and its
 * IP address (curl trusts at least that CA and checks the same address), no SNI to an IP address, as curl;
 * or `http://IPV4:PORT/plain-path` without a CA file, a client certificate or a proxy setting curl reads
 * (http_proxy, all_proxy, ALL_PROXY). One GET with curl's Host and Accept headers, the answer read as
 * http.client reads it (by its length, its chunks, or to the end of a closed connection; anything else is
 * odd), without importing http.client (its email parser is most of the reader's start-up); only a complete
 * answer with status 200 or 503 (no redirect
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
# The C modules under ssl, socket, threading and os: importing those (their enums most) was half the start-up;
# re was a third of the rest (compiling its patterns in Python), so the few patterns are written out below.
import _socket, _ssl, _thread, binascii, posix, sys, time

SECONDS = ${TLS_READER_SECONDS}
URL_READY_SECONDS = ${URL_READY_SECONDS}
SSL_REQUEST = bytes([0, 0, 0, 8, 4, 210, 22, 47])
DIGITS = frozenset('0123456789')
HEX_UPPER = frozenset('0123456789ABCDEF')
PATH_CHARACTERS = frozenset('ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789/._-')
TOKEN_CHARACTERS = frozenset("!#$%&'*+.^_|~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz-")
# Printable ASCII: the callers add the white space they allow.
PRINTABLE = bytes(range(32, 127))

def decimal(text, most, zero=False):
    """re.fullmatch('[1-9][0-9]{0,MOST-1}', text), or '0|...' with zero: ASCII digits only, no leading zero."""
    if not 0 < len(text) <= most or not set(text) <= DIGITS:
        return False
    return text[0] != '0' or (zero and text == '0')

def ipv4(text):
    """re.fullmatch('(?:0|[1-9][0-9]{0,2})' four times joined by dots, text)."""
    parts = text.split('.')
    return len(parts) == 4 and all(decimal(part, 3, zero=True) for part in parts)

def only(data, allowed):
    """Whether every byte of data is one of allowed (bytes)."""
    return not data.translate(None, allowed)

def http_url(url):
    """re.fullmatch('(https?)://(IPV4):([1-9][0-9]{0,4})(/[A-Za-z0-9/._-]*)?', url): scheme, address, port, path."""
    scheme, separator, rest = url.partition('://')
    if scheme not in ('http', 'https') or not separator:
        return None
    authority, slash, path = rest.partition('/')
    address, colon, port = authority.partition(':')
    if not colon or not ipv4(address) or not decimal(port, 5) or not set(path) <= PATH_CHARACTERS:
        return None
    return scheme, address, port, slash + path
# curl's proxy settings for a plain http URL (it reads no HTTP_PROXY in capitals).
PLAIN_PROXIES = (b'http_proxy', b'all_proxy', b'ALL_PROXY')

def serial_line(path):
    number = _ssl._test_decode_cert(path)['serialNumber']
    digits = number[1:] if number.startswith('-') else number
    if not 0 < len(digits) <= 70 or len(digits) % 2 or not set(digits) <= HEX_UPPER:
        raise ValueError('not one line')
    return 'serial=' + number

def on_disk(path):
    try:
        st = posix.stat(path)
    except FileNotFoundError:
        return ''
    if st.st_mode & 0o170000 != 0o100000 or st.st_size > 1048576:
        raise ValueError('not a plain file')
    with open(path, 'rb') as f:
        text = f.read()
    begin = next((line for line in text.split(b'\n') if line.startswith(b'-----BEGIN ')), None)
    if not only(text, b'\n' + PRINTABLE) or begin != b'-----BEGIN CERTIFICATE-----':
        raise ValueError('not a plain certificate file')
    return serial_line(path)

# One context per kind of connection, made once for the batch and shared by its threads (making an OpenSSL 3
# context and loading its CA file cost more than a handshake); each is set up whole before any thread uses it.
contexts = {}
contexts_made = _thread.allocate_lock()

def shared_context(key, make):
    with contexts_made:
        if key not in contexts:
            contexts[key] = make()
        return contexts[key]

# A read that several questions make (etcd's /health of a member each health gate lists) is made once per batch:
# the first asker reads, the others wait for its answer or its error.
reads = {}
reads_made = _thread.allocate_lock()

def once(key, read):
    with reads_made:
        entry = reads.setdefault(key, [_thread.allocate_lock(), None])
    with entry[0]:
        if entry[1] is None:
            try:
                entry[1] = (True, read())
            except Exception as error:
                entry[1] = (False, error)
    made, value = entry[1]
    if not made:
        raise value
    return value

def unverified():
    context = _ssl._SSLContext(_ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = _ssl.CERT_NONE
    return context

def unverified_context():
    return shared_context(('unverified',), unverified)

def verifying_context(ca_file, client):
    def make():
        # Python 3.11's ssl.create_default_context(cafile=ca_file) (Debian 12): a client context verifies the peer
        # and its name by default.
        context = _ssl._SSLContext(_ssl.PROTOCOL_TLS_CLIENT)
        context.load_verify_locations(ca_file)
        if client:
            context.load_cert_chain(*client)
        return context
    return shared_context(('verifying', ca_file, tuple(client or ())), make)

class Socket(_socket.socket):
    """A socket a TLS connection can refer to (the C type takes no weak reference), as socket.socket."""
    __slots__ = ('__weakref__',)

def connected(address, port, seconds):
    """socket.create_connection for an IPv4 address: the caller closes it."""
    plain = Socket(_socket.AF_INET, _socket.SOCK_STREAM)
    try:
        plain.settimeout(seconds)
        plain.connect((address, port))
    except BaseException:
        plain.close()
        raise
    return plain

def send_all(stream, data):
    """sendall, on a plain socket or a TLS one."""
    if isinstance(stream, _socket.socket):
        stream.sendall(data)
        return
    while data:
        data = data[stream.write(data):]

def received(stream, size):
    """socket.recv, or SSLSocket.recv: a TLS connection cut without its close_notify reads as its end."""
    if isinstance(stream, _socket.socket):
        return stream.recv(size)
    try:
        return stream.read(size)
    except _ssl.SSLError as error:
        if error.args[0] == _ssl.SSL_ERROR_EOF:
            return b''
        raise

def secured(context, plain, server_hostname=None):
    """context.wrap_socket(plain, server_hostname=...): the TLS handshake done (an IP address: no SNI)."""
    tls = context._wrap_socket(plain, False, server_hostname)
    tls.do_handshake()
    return tls

def pem(der):
    """ssl.DER_cert_to_PEM_cert."""
    text = binascii.b2a_base64(der, newline=False).decode('ascii')
    lines = [text[i:i + 64] for i in range(0, len(text), 64)]
    return '\n'.join(['-----BEGIN CERTIFICATE-----'] + lines + ['-----END CERTIFICATE-----\n'])

def presented(address, port, starttls):
    if not ipv4(address) or not decimal(port, 5):
        raise ValueError('not an IPv4 address and port')
    if starttls not in ('', 'postgres'):
        raise ValueError('starttls')
    plain = connected(address, int(port), SECONDS)
    try:
        if starttls == 'postgres':
            send_all(plain, SSL_REQUEST)
            if received(plain, 16384) != b'S':
                raise ValueError('no TLS')
        der = secured(unverified_context(), plain).getpeercert(True)
    finally:
        plain.close()
    memory = posix.memfd_create('served')
    try:
        posix.write(memory, pem(der).encode())
        return serial_line('/proc/self/fd/%d' % memory)
    finally:
        posix.close(memory)

def served(address, port, starttls, cert_file):
    return 0, ('%s\n%s\n' % (on_disk(cert_file), presented(address, port, starttls))).encode()

def read_response(stream):
    """The status and body of one HTTP/1.x answer, as http.client reads them; anything odd raises."""
    head = b''
    while b'\r\n\r\n' not in head:
        chunk = received(stream, 16384)
        if not chunk or len(head) > 65536:
            raise ValueError('no complete head')
        head += chunk
    head, rest = head.split(b'\r\n\r\n', 1)
    status_line, *header_lines = head.decode('latin-1').split('\r\n')
    # re.fullmatch('HTTP/1\\.([01]) ([1-5][0-9][0-9])(?: .*)?', status_line), the status not 1xx.
    minor, code, reason = status_line[7:8], status_line[9:12], status_line[12:]
    if (not status_line.startswith('HTTP/1.') or minor not in ('0', '1') or status_line[8:9] != ' '
            or len(code) != 3 or code[0] not in '2345' or not set(code[1:]) <= DIGITS
            or not (reason == '' or reason[0] == ' ' and '\n' not in reason)):
        raise ValueError('not a final HTTP/1.x status')
    headers = {}
    for line in header_lines:
        name, colon, value = line.partition(':')
        if not colon or not name or not set(name) <= TOKEN_CHARACTERS or name.lower() in headers:
            raise ValueError('a header line http.client might read otherwise')
        headers[name.lower()] = value.strip()

    def more():
        chunk = received(stream, 65536)
        if not chunk:
            raise ValueError('cut short')
        return chunk

    status = int(code)
    if status in (204, 304):
        return status, b''
    if 'transfer-encoding' in headers:
        if headers['transfer-encoding'].lower() != 'chunked':
            raise ValueError('a transfer coding')
        body = b''
        while True:
            while b'\r\n' not in rest:
                rest += more()
            size_line, rest = rest.split(b'\r\n', 1)
            size = int(size_line.split(b';')[0].strip(), 16)
            while len(rest) < size + 2:
                rest += more()
            if size == 0:
                return status, body
            if rest[size:size + 2] != b'\r\n':
                raise ValueError('a bad chunk')
            body, rest = body + rest[:size], rest[size + 2:]
    if 'content-length' in headers:
        length = headers['content-length']
        if not 0 < len(length) <= 9 or not set(length) <= DIGITS:
            raise ValueError('a bad length')
        length = int(length)
        while len(rest) < length:
            rest += more()
        return status, rest[:length]
    if minor == '1' and headers.get('connection', '').lower() != 'close':
        raise ValueError('no length on a kept connection')
    while True:
        chunk = received(stream, 65536)
        if not chunk:
            return status, rest
        rest += chunk

def http_get(url, ca_file, seconds, client=None):
    """One GET with curl's Host and Accept headers: https verified with the CA file (and its IP address), or
    plain http when curl would go straight to the server (no CA file, no client certificate, no proxy)."""
    parts = http_url(url)
    if not parts:
        raise ValueError('not a plain http or https URL')
    scheme, address, port, path = parts[0], parts[1], int(parts[2]), parts[3] or '/'
    if scheme == 'https' and not ca_file:
        raise ValueError('an https URL without its CA file')
    if scheme == 'http' and (ca_file or client or any(posix.environ.get(v) for v in PLAIN_PROXIES)):
        raise ValueError('plain http only straight to the server')
    host = address if port == (443 if scheme == 'https' else 80) else '%s:%d' % (address, port)
    request = ('GET %s HTTP/1.1\r\nHost: %s\r\nAccept: */*\r\n\r\n' % (path, host)).encode()
    plain = connected(address, port, seconds)
    try:
        stream = secured(verifying_context(ca_file, client), plain, address) if scheme == 'https' else plain
        send_all(stream, request)
        status, body = read_response(stream)
    finally:
        plain.close()
    if status not in (200, 503):
        raise ValueError('another status')
    return status, body

def get(url, ca_file, *_):
    status, body = http_get(url, ca_file, SECONDS)
    if not body:
        raise ValueError('no body')
    return 0, body + b'\n' + str(status).encode()

def ready(url, ca_file, *_):
    started = time.monotonic()
    status, _ = http_get(url, ca_file, URL_READY_SECONDS)
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
        read = lambda: http_get(url + '/health', ca_file, URL_READY_SECONDS, (cert_file, key_file))
        status, body = once(('health', url, ca_file, cert_file, key_file), read)
        if not only(body, b'\t\n\r' + PRINTABLE):
            raise ValueError('not plain text')
        if status != 200 or b'"health":"true"' not in body:
            code = 1
            break
    if time.monotonic() - started > URL_READY_SECONDS:
        raise ValueError('late')
    return code, b''

KINDS = {'x': served, 'o': get, 'y': ready, 'v': healthy}
answers = {}
questions = [sys.argv[i:i + 5] for i in range(1, len(sys.argv) - 4, 5)]
left = [len(questions)]
counting = _thread.allocate_lock()
all_answered = _thread.allocate_lock()
all_answered.acquire()

def answer(i, kind, *values):
    try:
        answers[i] = KINDS[kind](*values)
    except Exception:
        pass
    finally:
        with counting:
            left[0] -= 1
            if left[0] == 0:
                all_answered.release()

for i, question in enumerate(questions):
    _thread.start_new_thread(answer, (i, *question))
if questions:
    all_answered.acquire(timeout=SECONDS)
done = dict(answers)
lines = ('%d %s' % (done[i][0], done[i][1].hex()) if i in done else '-' for i in range(len(questions)))
sys.stdout.write(''.join(line + '\n' for line in lines))
sys.stdout.flush()
posix._exit(0)
`
