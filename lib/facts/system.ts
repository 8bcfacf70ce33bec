/**
 * System facts, gathered once per host at the start of a run with a single command: OS and release,
 * architecture, CPUs, memory, addresses, hostname, the address this run's SSH connection comes from as the host
 * sees it. One perl program (perl-base is Essential on Debian) reads them as the commands that name them print
 * them (`hostname`, `hostname -f`, `uname -m`/`-r`, `nproc`, MemTotal of /proc/meminfo, /proc/1/comm,
 * `. /etc/os-release`, `ip`), starting only `hostname -f`, `nproc` and `ip` (twice): the script it replaced started
 * some twenty processes on every host at every run. It loads no module: POSIX.pm or Socket.pm alone costs a lab
 * host more CPU than five commands. It runs as the login user, without sudo (which would clear SSH_CONNECTION).
 */
import type { Connection, Facts } from '../types.ts'
import { IPV4 } from '../inventory/formats.ts'

/**
 * The gathering program. Prints `key=value` lines (see parseFacts).
 * The address lines are `ip -o -4 addr show scope global`'s, the default source the first `src` of
 * `ip -4 route get 1.1.1.1` (which sends nothing); os-release's values are unquoted as the shell does.
 */
export const FACTS_PROGRAM = String.raw`
use strict;
sub slurp { my ($path) = @_; open(my $fh, '<', $path) or return undef; local $/; my $text = <$fh>; close($fh); $text }
# A command's output as $(...) gives it (trailing newlines dropped), its stderr dropped as by 2>/dev/null.
sub output {
  open(my $saved, '>&', \*STDERR) or return (127, '');
  open(STDERR, '>', '/dev/null');
  my $pid = open(my $fh, '-|', @_);
  open(STDERR, '>&', $saved);
  return (127, '') unless $pid;
  my $text = do { local $/; <$fh> } // '';
  close($fh);
  $text =~ s/\n+\z//;
  return ($? == -1 ? 127 : ($? & 127) ? 128 + ($? & 127) : $? >> 8, $text);
}
# uname(2)'s names as /proc/sys/kernel shows them (POSIX.pm alone would cost more than the commands did).
my %uname = map { my $text = slurp("/proc/sys/kernel/$_"); $text =~ s/\n\z// if defined $text; ($_ => $text) }
  qw(hostname osrelease arch);
my $node = $uname{hostname} // (output('hostname'))[1];
print "hostname=$node\n";
my ($named, $fqdn) = output('hostname', '-f');
print 'fqdn=', ($named == 0 ? $fqdn : $node), "\n";
print 'arch=', $uname{arch} // (output('uname', '-m'))[1], "\n";
print 'kernel=', $uname{osrelease} // (output('uname', '-r'))[1], "\n";
print 'cpus=', (output('nproc'))[1], "\n";
my ($memkb) = (slurp('/proc/meminfo') // '') =~ /^MemTotal:\s+(\S+)/m;
print 'memkb=', $memkb // '', "\n";
my $pid1 = slurp('/proc/1/comm') // '';
$pid1 =~ s/\n+\z//;
print "pid1=$pid1\n";
my %os;
if (open(my $fh, '<', '/etc/os-release')) {
  while (my $line = <$fh>) {
    chomp $line;
    next unless $line =~ /^([A-Za-z_][A-Za-z0-9_]*)=(.*)$/;
    my ($key, $rest, $value) = ($1, $2, '');
    while (length $rest) {
      if ($rest =~ s/^"((?:[^"\\]|\\.)*)"//s) { (my $part = $1) =~ s/\\([\$\x60"\\])/$1/g; $value .= $part }
      elsif ($rest =~ s/^'([^']*)'//) { $value .= $1 }
      elsif ($rest =~ s/^\\(.)//s) { $value .= $1 }
      elsif ($rest =~ s/^([^"'\\\s]+)//) { $value .= $1 }
      else { last }
    }
    $os{$key} = $value;
  }
  close($fh);
}
print map { "$_->[0]=" . ($os{$_->[1]} // '') . "\n" }
  ['os_id', 'ID'], ['os_version', 'VERSION_ID'], ['os_codename', 'VERSION_CODENAME'], ['os_pretty', 'PRETTY_NAME'];
for (split /\n/, (output('ip', '-o', '-4', 'addr', 'show', 'scope', 'global'))[1]) {
  my @field = split ' ';
  print 'addr=', $field[1] // '', ' ', $field[3] // '', "\n";
}
my $connection = $ENV{SSH_CONNECTION} // '';
$connection =~ s/ .*//s;
print "control=$connection\n";
my ($source) = map { my @field = split ' '; map { $field[$_] eq 'src' ? $field[$_ + 1] : () } 0 .. $#field - 1 }
  split /\n/, (output('ip', '-4', 'route', 'get', '1.1.1.1'))[1];
print "default=$source\n" if defined $source;
`

/** Parse the key=value lines printed by the facts program. */
export function parseFacts(output: string): Facts {
  const one: Record<string, string> = {}
  const ipv4: Record<string, string[]> = {}
  for (const line of output.split('\n')) {
    const eq = line.indexOf('=')
    if (eq < 0) continue
    const key = line.slice(0, eq)
    const value = line.slice(eq + 1).trim()
    if (key === 'addr') {
      const [iface, cidr] = value.split(' ')
      if (iface && cidr) (ipv4[iface] ??= []).push(cidr.split('/')[0]!)
    } else one[key] = value
  }
  return {
    hostname: one.hostname ?? '',
    fqdn: one.fqdn ?? one.hostname ?? '',
    os: {
      id: one.os_id ?? '',
      versionId: one.os_version ?? '',
      codename: one.os_codename ?? '',
      prettyName: one.os_pretty ?? '',
    },
    arch: one.arch ?? '',
    kernel: one.kernel ?? '',
    cpus: Number(one.cpus) || 1,
    memoryMb: Math.round((Number(one.memkb) || 0) / 1024),
    ipv4,
    defaultIpv4: one.default || undefined,
    controlAddress: one.control && IPV4.test(one.control) ? one.control : undefined,
    systemd: one.pid1 === 'systemd',
  }
}

/** Gather the facts of one host in one round trip. The route lookup sends no traffic. */
export async function gatherFacts(conn: Connection): Promise<Facts> {
  const program = ['perl', '-e', FACTS_PROGRAM]
  const result = await conn.run(program, { sudo: false, check: true, timeoutMs: 30_000 })
  return parseFacts(result.stdout)
}
