/**
 * Batched probes: the read-only questions of many tasks' checks (path states, package states, file
 * contents, any read-only command) answered by one perl script in one round trip, as pyinfra batches
 * its facts. perl-base is Essential on Debian (the privileged session's helper is perl too), so the
 * script needs nothing else: path states are read with lstat natively and one `sha256sum` hashes every
 * regular file, one `dpkg-query` answers every package probe, one `systemctl is-enabled` and one
 * `systemctl is-active` every unit probe, every TCP port probe is one non-blocking connect of its own, all
 * side by side within PORT_CONNECT_SECONDS, and only the other commands start a process each (up to
 * PROBE_COMMANDS_AT_ONCE of them side by side, each through `/bin/sh -c` as a live command runs: they
 * only read; the next starts as soon as any one ends, so a slow command holds back no other). Each
 * answer is exactly what the probe's own command prints (`probeCommand`), so a check cannot tell a
 * batched answer from a live one. Reads larger than PROBE_READ_MAX_BYTES, and failing
 * reads, answer non-zero: the check then reads live and sees the real error.
 */
import type { CommandProbe, Probe, ProbeAnswer } from '../types.ts'
import { pathStateCommand } from './files.ts'
import { packageStateCommand } from './packages.ts'
import { PORT_CONNECT_SECONDS, portStateCommand } from './ports.ts'
import { unitStateCommand } from './units.ts'

/** A batch runs this many of its commands (`c` probes) side by side; answers stay in the probes' order. */
export const PROBE_COMMANDS_AT_ONCE = 6

/** Files larger than this are not read by a batch. */
export const PROBE_READ_MAX_BYTES = 1024 * 1024

/**
 * The evaluator. Input: one probe a line, its kind (`p` path state, `d` packages, `u` unit, `t` TCP port,
 * `r` read, `c` command) and its hex-encoded arguments (a port's IPv4 address and number; a unit's name,
 * then its own command: when the units' answers do not come one line per unit, as when systemctl stops
 * at a unit it cannot read, each unit asks its own command). Output: one line per probe, in order: the
 * exit code and the hex-encoded output. stderr is dropped (a probe's answer is its stdout and code, as
 * checks read them).
 */
export const PROBE_SCRIPT = String.raw`
use strict;
use IO::Select;
open(STDERR, '>', '/dev/null');
my @probes = map { chomp; my ($k, @a) = split / /; [$k, map { pack('H*', $_) } @a] } <STDIN>;
my (%state, %hash, %status, @files, %port);
my @ports = do { my %seen; grep { $_->[0] eq 't' && !$seen{"$_->[1] $_->[2]"}++ } @probes };
if (@ports) {
  require IO::Socket::INET;
  my $pending = IO::Select->new;
  my %socket;
  for my $p (@ports) {
    my $key = "$p->[1] $p->[2]";
    my $s = $p->[1] =~ /^[0-9.]+$/ && $p->[2] =~ /^[0-9]+$/
      && IO::Socket::INET->new(PeerAddr => $p->[1], PeerPort => $p->[2], Proto => 'tcp', Blocking => 0);
    if (!$s) { $port{$key} = 1; next }
    $socket{fileno $s} = [$key, $s];
    $pending->add($s);
  }
  my $left = ${PORT_CONNECT_SECONDS};
  while ($pending->count && $left > 0) {
    my ($n, $timeleft) = select(undef, my $ready = $pending->bits, undef, $left);
    last if $n < 0;
    $left = $timeleft;
    for my $s (grep { vec($ready, fileno $_, 1) } $pending->handles) {
      $port{$socket{fileno $s}[0]} = $s->sockopt(IO::Socket::SO_ERROR()) ? 1 : 0;
      $pending->remove($s);
    }
  }
  $port{$socket{fileno $_}[0]} = 124 for $pending->handles;
  close($_->[1]) for values %socket;
}
for my $p (grep { $_->[0] eq 'p' } @probes) {
  my $path = $p->[1];
  next if exists $state{$path};
  if (-l $path) { my $t = readlink($path); $state{$path} = "link\n" . (defined $t ? $t : '') . "\n"; next }
  my @s = lstat($path);
  if (!@s) { $state{$path} = "absent\n"; next }
  my $type = -f _ ? ($s[7] ? 'regular file' : 'regular empty file') : -d _ ? 'directory' : -p _ ? 'fifo'
    : -S _ ? 'socket' : -b _ ? 'block special file' : 'character special file';
  my $user = getpwuid($s[4]); my $group = getgrgid($s[5]);
  $state{$path} = sprintf("%s|%o|%s|%s|%d\n", $type, $s[2] & 07777,
    defined $user ? $user : 'UNKNOWN', defined $group ? $group : 'UNKNOWN', $s[7]);
  push @files, $path if -f _;
}
while (my @chunk = splice(@files, 0, 500)) {
  open(my $fh, '-|', 'sha256sum', '-z', '--', @chunk) or next;
  local $/ = "\0";
  while (my $line = <$fh>) { chomp $line; $hash{$2} = $1 if $line =~ /^([0-9a-f]{64})  (.*)$/s }
  close($fh);
}
for my $path (keys %state) { $state{$path} .= (defined $hash{$path} ? $hash{$path} : '') . "\n" if $state{$path} =~ /^regular/ }
my %wanted = map { $_ => 1 } map { @$_[1 .. $#$_] } grep { $_->[0] eq 'd' } @probes;
if (%wanted) {
  open(my $fh, '-|', 'dpkg-query', '-W', '-f', '$' . '{Package} $' . '{db:Status-Status}\n', sort keys %wanted);
  while (my $line = <$fh>) { my ($name) = split(/[ :]/, $line); $status{$name} .= $line }
  close($fh);
}
my @units = do { my %seen; grep { !$seen{$_}++ } map { $_->[1] } grep { $_->[0] eq 'u' } @probes };
my %unit;
if (@units) {
  my @enabled = qx_lines('systemctl', 'is-enabled', @units);
  my @active = qx_lines('systemctl', 'is-active', @units);
  if (@enabled == @units && @active == @units) { $unit{$units[$_]} = "$enabled[$_]$active[$_]" for 0 .. $#units }
}
sub qx_lines { open(my $fh, '-|', @_) or return (); my @lines = <$fh>; close($fh); return @lines }
my @jobs = grep { $probes[$_][0] eq 'c' } 0 .. $#probes;
my (%ran, %running);
my $select = IO::Select->new;
my $started = 0;
while ($started < @jobs || $select->count) {
  while ($select->count < ${PROBE_COMMANDS_AT_ONCE} && $started < @jobs) {
    my $i = $jobs[$started++];
    if (open(my $fh, '-|', '/bin/sh', '-c', $probes[$i][1])) { $running{fileno $fh} = [$i, $fh, '']; $select->add($fh) }
    else { $ran{$i} = [127, ''] }
  }
  for my $fh ($select->can_read) {
    my $job = $running{fileno $fh};
    my $n = sysread($fh, my $chunk, 65536);
    next if !defined $n && $!{EINTR};
    if ($n) { $job->[2] .= $chunk; next }
    $select->remove($fh);
    delete $running{fileno $fh};
    close($fh);
    $ran{$job->[0]} = [$? == -1 ? 127 : ($? & 127) ? 128 + ($? & 127) : $? >> 8, $job->[2]];
  }
}
for my $i (0 .. $#probes) {
  my ($k, @a) = @{$probes[$i]};
  my ($code, $out) = (0, '');
  if ($k eq 'p') { $out = $state{$a[0]} }
  elsif ($k eq 'u' && defined $unit{$a[0]}) { $out = $unit{$a[0]} }
  elsif ($k eq 'u') { $out = qx{$a[1]}; $code = $? >> 8 }
  elsif ($k eq 't') { $code = $port{"$a[0] $a[1]"} }
  elsif ($k eq 'd') { my %seen; $out = join('', map { $seen{$_}++ || !defined $status{$_} ? () : $status{$_} } sort @a) }
  elsif ($k eq 'r') {
    my $size = -s $a[0];
    if (-f _ && defined $size && $size <= ${PROBE_READ_MAX_BYTES} && open(my $fh, '<:raw', $a[0])) {
      local $/; $out = <$fh>; $out = '' unless defined $out; close($fh);
    } else { $code = 1 }
  } else { ($code, $out) = @{$ran{$i}} }
  print $code, ' ', unpack('H*', $out), "\n";
}
`

const hex = (text: string) => Buffer.from(text).toString('hex')

/** The evaluator's input for these probes. */
export function probeInput(probes: readonly Probe[]): string {
  const line = (p: Probe): string => {
    switch (p.kind) {
      case 'path':
        return `p ${hex(p.path)}`
      case 'packages':
        return ['d', ...p.names.map(hex)].join(' ')
      case 'unit':
        return `u ${hex(p.name)} ${hex(unitStateCommand(p.name))}`
      case 'port':
        return `t ${hex(p.address)} ${hex(String(p.port))}`
      case 'read':
        return `r ${hex(p.path)}`
      case 'run':
        return `c ${hex(p.command)}`
    }
  }
  return probes.map((p) => `${line(p)}\n`).join('')
}

/** Parse the evaluator's output into one answer per probe; throws when it does not hold exactly `count`. */
export function parseProbeAnswers(stdout: string, count: number): ProbeAnswer[] {
  const lines = stdout.split('\n')
  if (lines.at(-1) === '') lines.pop()
  if (lines.length !== count) throw new Error(`probe batch: expected ${count} answers, got ${lines.length}`)
  return lines.map((line, i) => {
    const m = /^(\d+) ((?:[0-9a-f]{2})*)$/.exec(line)
    if (!m) throw new Error(`probe batch: answer ${i + 1} is malformed`)
    return { code: Number(m[1]), stdout: Buffer.from(m[2]!, 'hex') }
  })
}

/** The command a check runs for this probe (the batched answer stands for its output), none for a read. */
export function probeCommand(probe: CommandProbe): string
export function probeCommand(probe: Probe): string | undefined
export function probeCommand(probe: Probe): string | undefined {
  switch (probe.kind) {
    case 'path':
      return pathStateCommand(probe.path)
    case 'packages':
      return packageStateCommand(probe.names)
    case 'unit':
      return unitStateCommand(probe.name)
    case 'port':
      return portStateCommand(probe.address, probe.port)
    case 'run':
      return probe.command
    case 'read':
      return undefined
  }
}

/** The key under which a probe's answer is kept: a command's text, or the path read. */
export function probeKey(probe: Probe): string {
  const command = probeCommand(probe)
  return command === undefined ? `read\u0000${(probe as { path: string }).path}` : `run\u0000${command}`
}
