/**
 * The remote half of the persistent privileged session: a small Perl program
 * (perl-base modules only, so it runs on every Debian host) started once per
 * connection as `sudo -n -H -- perl -e HELPER_BOOT`, which reads the program itself
 * from its stdin first (so sudo logs a one-line command, not the whole program, in the
 * host's auth log on every run), and the framing both halves speak over its stdin and
 * stdout. Pure functions, unit-testable without a host.
 *
 * Request:  `run ID ARGC LEN_1 .. LEN_ARGC STDIN_LEN\n`, the argument bytes, then the stdin bytes; or
 *           `lock ID DIR_LEN LOCK_LEN HOLDER_LEN LINE_LEN\n` and those four strings (see encodeLockRequest).
 * Response: `done ID CODE STDOUT_LEN STDERR_LEN\n`, the stdout bytes, then the stderr bytes.
 * The helper runs one request at a time: it forks, execs the argv (no shell of its own),
 * feeds the stdin, collects both outputs byte for byte and answers with the exit code
 * (128 + N for a process killed by signal N, as a shell and the exec path report it).
 * It prints `hastack-session ready` once sudo has let it start.
 *
 * A lock request takes the host lock (lib/play/host-lock.ts) in the helper itself, as `mkdir -p -m 0700 DIR`
 * and `flock -n LOCK` would: `locked` (exit 0) after writing LINE to the HOLDER file, or `held <holder>` (exit
 * LOCK_HELD) when another process has it, read 0.3 s later so that the winner has written its name. The helper
 * keeps the lock until it exits, which it does as soon as its input ends (the channel or the connection
 * closed): between requests, and also during a command, whose process group it then kills first. A command runs
 * in a process group of its own.
 */
import type { LockRequest } from '../types.ts'

/** A lock request's exit code when another process holds the lock: flock's `-E` code in lib/play/host-lock.ts. */
export const LOCK_HELD = 75

/** The first line the helper prints once it runs as root. */
export const READY_LINE = 'hastack-session ready'

/**
 * What sudo starts: read the program's length on a line, then its bytes (sysread only: nothing past them is
 * buffered away from the program, which reads its requests the same way), and run it.
 */
export const HELPER_BOOT =
  'my ($n, $c, $p) = ("", "", ""); while (sysread(STDIN, $c, 1)) { last if $c eq "\\n"; $n .= $c } ' +
  'exit 2 unless $n =~ /^[0-9]{1,7}$/; ' +
  'while (length($p) < $n) { sysread(STDIN, $p, $n - length($p), length($p)) or exit 2 } eval $p; die $@ if $@'

/** The helper's program as HELPER_BOOT reads it from the session's stdin: its length, a newline, its bytes. */
export const helperProgramInput = (): Buffer => {
  const program = Buffer.from(HELPER_SOURCE, 'utf8')
  return Buffer.concat([Buffer.from(`${program.length}\n`), program])
}

/** The helper's source: `perl -e` runs it; kept free of single quotes only for readability of `ps`. */
export const HELPER_SOURCE = String.raw`
use strict; use warnings;
use Fcntl qw(F_GETFL F_SETFL O_NONBLOCK O_RDONLY O_CREAT O_NOCTTY LOCK_EX LOCK_NB);
binmode STDIN; binmode STDOUT; binmode STDERR;
sub quit { print STDERR "hastack-session: $_[0]\n"; exit 2 }
# Input read while a command ran (requests sent ahead of their turn), consumed before the rest; and whether the
# input had ended then.
my ($early, $ended) = ("", 0);
sub more {
  my ($n) = @_;
  return substr($early, 0, $n, "") if length $early;
  return "" if $ended;
  my $r = sysread(STDIN, my $c, $n);
  return $r ? $c : "";
}
sub take {
  my ($n) = @_; my $b = "";
  while (length($b) < $n) { my $c = more($n - length($b)); quit("input ended") unless length $c; $b .= $c }
  return $b;
}
sub header {
  my $l = "";
  while (1) {
    my $c = more(1);
    exit 0 if $c eq "" && $l eq "";
    quit("input ended") if $c eq "";
    return $l if $c eq "\n";
    $l .= $c; quit("header too long") if length($l) > 65536;
  }
}
sub send_all {
  my ($d) = @_; my $o = 0;
  while ($o < length $d) { my $w = syswrite(STDOUT, $d, length($d) - $o, $o); exit 3 unless defined $w; $o += $w }
}
sub run_one {
  my ($argv, $in) = @_;
  pipe(my $ir, my $iw) && pipe(my $or, my $ow) && pipe(my $er, my $ew) or return (127, "", "hastack-session: pipe: $!\n");
  my $pid = fork;
  return (127, "", "hastack-session: fork: $!\n") unless defined $pid;
  if (!$pid) {
    setpgrp(0, 0);
    open(STDIN, "<&", $ir); open(STDOUT, ">&", $ow); open(STDERR, ">&", $ew);
    { no warnings; exec { $argv->[0] } @$argv; }
    # Nothing is buffered (the helper writes with syswrite, STDERR unbuffered) and nothing runs at exit.
    print STDERR "hastack-session: cannot run $argv->[0]: $!\n"; exit 127;
  }
  setpgrp($pid, $pid);
  close $ir; close $ow; close $ew;
  local $SIG{PIPE} = "IGNORE";
  my ($out, $err, $off) = ("", "", 0);
  my %sink = (fileno($or) => \$out, fileno($er) => \$err);
  # Its own input too: where it ends (the channel closed) while the command runs and no request is waiting, the
  # command's process group is killed and the helper exits (its host lock with it).
  my %reading = (fileno($or) => $or, fileno($er) => $er, $ended ? () : (fileno(STDIN) => \*STDIN));
  my $pipes = 2; my $writing = length $in;
  if ($writing) { fcntl($iw, F_SETFL, fcntl($iw, F_GETFL, 0) | O_NONBLOCK) } else { close $iw }
  while ($pipes || $writing) {
    my ($rbits, $wbits) = ("", "");
    vec($rbits, $_, 1) = 1 for keys %reading;
    vec($wbits, fileno($iw), 1) = 1 if $writing;
    next unless select(my $r = $rbits, my $w = $wbits, undef, undef) > 0;
    if ($writing && vec($w, fileno($iw), 1)) {
      my $n = syswrite($iw, $in, 65536, $off);
      if (defined $n) { $off += $n } elsif (!$!{EAGAIN}) { $off = length $in }
      if ($off >= length $in) { $writing = 0; close $iw }
    }
    for my $f (grep { vec($r, $_, 1) } keys %reading) {
      my $fh = $reading{$f};
      if ($f == fileno(STDIN)) {
        my $n = sysread(STDIN, my $chunk, 65536);
        if (!$n && !length $early) { kill("KILL", -$pid); exit 0 }
        if ($n) { $early .= $chunk } else { $ended = 1 }
        delete $reading{$f};
        next;
      }
      my $n = sysread($fh, my $chunk, 65536);
      if ($n) { my $to = $sink{$f}; $$to .= $chunk } else { delete $reading{$f}; close $fh; $pipes-- }
    }
  }
  waitpid($pid, 0);
  my $s = $?;
  return (($s & 127) ? 128 + ($s & 127) : $s >> 8, $out, $err);
}
my @locks;
sub take_lock {
  my ($dir, $lock, $who, $line) = @_;
  my $made = "";
  for my $part (grep { length } split m{/}, $dir) {
    $made .= "/$part";
    next if -d $made;
    mkdir($made, $made eq $dir ? 0700 : 0777) or -d $made or return (1, "", "hastack-session: mkdir $made: $!\n");
  }
  sysopen(my $fh, $lock, O_RDONLY | O_CREAT | O_NOCTTY, 0666) or return (1, "", "hastack-session: $lock: $!\n");
  if (!flock($fh, LOCK_EX | LOCK_NB)) {
    return (1, "", "hastack-session: flock $lock: $!\n") unless $!{EWOULDBLOCK};
    close $fh;
    select(undef, undef, undef, 0.3);
    my $holder = "";
    if (open(my $in, "<", $who)) { local $/; $holder = <$in> // ""; close $in }
    $holder =~ s/\n+\z//;
    return (${LOCK_HELD}, "held $holder\n", "");
  }
  open(my $out, ">", $who) or return (1, "", "hastack-session: $who: $!\n");
  print {$out} "$line\n";
  close($out) or return (1, "", "hastack-session: $who: $!\n");
  push @locks, $fh;
  return (0, "locked\n", "");
}
send_all("${READY_LINE}\n");
while (1) {
  my @h = split / /, header();
  quit("bad header") unless @h >= 2 && !grep { !/^\d+$/ } @h[1 .. $#h];
  if ($h[0] eq "lock") {
    quit("bad header") unless @h == 6;
    my ($code, $out, $err) = take_lock(map { take($_) } @h[2 .. 5]);
    send_all("done $h[1] $code " . length($out) . " " . length($err) . "\n" . $out . $err);
    next;
  }
  quit("bad header") unless @h >= 4 && $h[0] eq "run";
  my (undef, $id, $argc, @lens) = @h;
  quit("bad header") unless $argc >= 1 && @lens == $argc + 1;
  my @argv = map { take($_) } @lens[0 .. $argc - 1];
  my $in = take($lens[$argc]);
  my ($code, $out, $err) = run_one(\@argv, $in);
  send_all("done $id $code " . length($out) . " " . length($err) . "\n" . $out . $err);
}
`

/** A lock request's bytes: header line, then the directory, lock file, holder file and line. */
export function encodeLockRequest(id: number, request: LockRequest): Buffer {
  const parts = [request.dir, request.lock, request.holder, request.line].map((text) => {
    if (/[\0\n]/.test(text)) throw new TypeError('a lock request cannot hold a NUL or a newline')
    return Buffer.from(text, 'utf8')
  })
  return Buffer.concat([Buffer.from(`lock ${id} ${parts.map((p) => p.length).join(' ')}\n`), ...parts])
}

/** One request's bytes: header line, arguments, stdin. */
export function encodeRequest(id: number, argv: readonly string[], stdin: Buffer): Buffer {
  if (argv.length === 0) throw new TypeError('a session request needs a command')
  const args = argv.map((a) => {
    if (a.includes('\0')) throw new TypeError('a command argument cannot contain a NUL byte')
    return Buffer.from(a, 'utf8')
  })
  const header = `run ${id} ${args.length} ${args.map((a) => a.length).join(' ')} ${stdin.length}\n`
  return Buffer.concat([Buffer.from(header), ...args, stdin])
}

export interface SessionResponse {
  id: number
  code: number
  stdout: Buffer
  stderr: Buffer
}

/** Header line longer than this means the stream is not a session's (a guard against unbounded buffering). */
const MAX_HEADER = 200

/**
 * Reads responses out of the helper's stdout as chunks arrive. `push` returns the complete
 * responses so far; it throws when the stream does not follow the protocol.
 */
export class ResponseReader {
  private buffer: Buffer = Buffer.alloc(0)
  private ready = false

  /** Whether the helper's ready line has been seen. */
  get started(): boolean {
    return this.ready
  }

  push(chunk: Buffer): SessionResponse[] {
    this.buffer = this.buffer.length ? Buffer.concat([this.buffer, chunk]) : chunk
    const done: SessionResponse[] = []
    for (;;) {
      const end = this.buffer.indexOf(10)
      if (end < 0) {
        if (this.buffer.length > MAX_HEADER) throw new Error('the session sent an over-long header')
        return done
      }
      const line = this.buffer.subarray(0, end).toString('latin1')
      if (!this.ready) {
        if (line !== READY_LINE) throw new Error(`the session did not start: ${JSON.stringify(line.slice(0, 80))}`)
        this.ready = true
        this.buffer = this.buffer.subarray(end + 1)
        continue
      }
      const m = /^done (\d+) (\d+) (\d+) (\d+)$/.exec(line)
      if (!m) throw new Error(`the session sent a malformed header: ${JSON.stringify(line.slice(0, 80))}`)
      const [outLen, errLen] = [Number(m[3]), Number(m[4])]
      const total = end + 1 + outLen + errLen
      if (this.buffer.length < total) return done
      const body = this.buffer.subarray(end + 1, total)
      done.push({
        id: Number(m[1]),
        code: Number(m[2]),
        stdout: Buffer.from(body.subarray(0, outLen)),
        stderr: Buffer.from(body.subarray(outLen)),
      })
      this.buffer = this.buffer.subarray(total)
    }
  }
}
