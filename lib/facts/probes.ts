/**
 * Batched probes: the read-only questions of many tasks' checks (path states, package states, file
 * contents, any read-only command) answered by one perl script in one round trip, as pyinfra batches
 * its facts. perl-base is Essential on Debian (the privileged session's helper is perl too), so the
 * script needs nothing else: path states are read with lstat natively and one `sha256sum` hashes every
 * regular file, one `dpkg-query` answers every package probe, one `systemctl is-enabled` and one
 * `systemctl is-active` every unit probe, every TCP port probe is one non-blocking connect of its own, all
 * side by side within PORT_CONNECT_SECONDS; a group's or user's entry is read from /etc/group and
 * /etc/passwd, a path `test` with perl's own, a file's digest from the same `sha256sum`, a line in a file, a
 * file's bytes, a directory's entries, the host name and a sysctl by reading them, every served-certificate
 * and HTTPS read of the batch from one python3 process beside the commands (lib/facts/tls-reader.ts), each
 * only where that
 * answer is provably the command's (else the command runs); and only the
 * other commands start a process each (up to
 * PROBE_COMMANDS_AT_ONCE of them side by side, each through `/bin/sh -c` as a live command runs: they
 * only read; the next starts as soon as any one ends, so a slow command holds back no other; the reader and the
 * first commands start before the evaluator answers anything itself, so their waits overlap its own work). Each
 * answer is exactly what the probe's own command prints (`probeCommand`), so a check cannot tell a
 * batched answer from a live one. Reads larger than PROBE_READ_MAX_BYTES, and failing
 * reads, answer non-zero: the check then reads live and sees the real error.
 */
import type { CommandProbe, Probe, ProbeAnswer } from '../types.ts'
import { pathStateCommand } from './files.ts'
import { packageStateCommand } from './packages.ts'
import { PORT_CONNECT_SECONDS, portStateCommand } from './ports.ts'
import { unitStateCommand } from './units.ts'
import { groupLookupCommand, userLookupCommand } from './accounts.ts'
import {
  contentDigestCommand,
  entryMatchCommand,
  fileContentCommand,
  lineInFileCommand,
  listingCommand,
  pathTestCommand,
} from './files.ts'
import { hostnameIsCommand, sysctlIsCommand } from './kernel.ts'
import { serialsCommand } from './served.ts'
import { TLS_READER_PY } from './tls-reader.ts'
import { type ClientTls, healthyCommand, httpGetCommand, urlReadyCommand } from './http.ts'

/** A batch runs this many of its commands (`c` probes) side by side; answers stay in the probes' order. */
export const PROBE_COMMANDS_AT_ONCE = 6

/** Files larger than this are not read by a batch. */
export const PROBE_READ_MAX_BYTES = 1024 * 1024

/**
 * The evaluator. Input: one probe a line, its kind (`p` path state, `d` packages, `u` unit, `t` TCP port,
 * `r` read, `c` command, and the kinds answered natively where provable: `g` group, `w` user, `e` path test,
 * `h` digest, `l` line in file, `f` file content, `i` listing, `m` entry match, `n` host name, `s` sysctl, `x`
 * served certificate, `o` HTTP GET, `y` URL ready, `v` etcd health) and its
 * hex-encoded arguments (a port's IPv4 address and number; a unit's name, then its own command: when the
 * units' answers do not come one line per unit, as when systemctl stops at a unit it cannot read, each unit
 * asks its own command; a native kind's arguments, then its own command, which runs as a `c` probe whenever
 * the evaluator cannot prove its answer). Output: one line per probe, in order: the exit code and the
 * hex-encoded output. stderr is dropped (a probe's answer is its stdout and code, as checks read them).
 *
 * Proofs the native kinds rest on: an account line is read from the file only when nsswitch.conf names
 * `files` first for that database with no action, nscd is not running, the name is an ordinary account name
 * (not a number, not an option) and every line of the file is plain (printable ASCII, the right number of
 * fields, decimal ids, no blank inside a name or a list); glibc's files service then returns the first line
 * of that name, which getent prints as it stands. `id -nG` is computed (the user's group, then the groups
 * listing the user in file order, as glibc's getgrouplist and coreutils' id give them) only when `files` is
 * the only source of both databases and no `initgroups` line exists, and every group id is found once. A
 * path test is perl's `-e`/`-d` (stat, as test's). A digest of one regular file is its sha256sum, of several
 * regular files Digest::SHA's over their bytes in order (where the module is installed). A line is
 * found by reading a regular file of printable ASCII, tabs and newlines (no byte grep could take for binary)
 * for a printable line that starts with no dash. `cat` of a regular file is its bytes, of a missing path
 * exit 1 and nothing. `ls -1` of a directory (no link) is its names not starting with a dot, all printable
 * ASCII, in byte order, when the collation is C or POSIX (LC_ALL, else LC_COLLATE, else LANG, unset or empty
 * counting as C) and QUOTING_STYLE is unset. find's -name with only `*` as a wildcard is matched against the
 * directory's own name (depth 0) and its entries' names (all printable ASCII; the directory no link,
 * absolute, plainly named). The host name is /proc/sys/kernel/hostname (the UTS name `hostname` prints), a
 * sysctl its /proc/sys file when that holds one decimal number; both compared as test's `=` compares strings,
 * for plain names and values. Served certificates and HTTPS reads are answered by TLS_READER_PY (its proofs
 * are written there), started under `timeout 5` only when /usr/bin/python3 exists and the tools the commands
 * would run (`openssl`; `curl`, and `grep` for a URL wait or health) and `timeout` are /usr/bin's (the same libssl3
 * then serves both), for HTTPS reads only with no curlrc and no proxy variable curl would read; its unproven
 * answers, or all of them when it fails, run their commands, which start as soon as it ends.
 */
export const PROBE_SCRIPT = String.raw`
use strict;
open(STDERR, '>', '/dev/null');
my $TLS_READER = <<'PY';
${TLS_READER_PY}
PY
my @probes = map { chomp; my ($k, @a) = split / /; [$k, map { pack('H*', $_) } @a] } <STDIN>;
my (%ran, %running);
# Whether the command PATH finds for a name is /usr/bin's own file (no link to another build): the same file
# (device and inode, links followed) as /usr/bin/NAME, which is not a link itself.
sub in_path_is {
  my ($name) = @_;
  my ($found) = grep { -f $_ && -x _ } map { "$_/$name" } split(/:/, $ENV{PATH} // '');
  return 0 if !defined $found || -l "/usr/bin/$name";
  my @found = stat($found);
  my @system = stat("/usr/bin/$name");
  return @found && @system && $found[0] == $system[0] && $found[1] == $system[1];
}
my %tls_tools = (x => ['openssl'], o => ['curl'], y => ['curl', 'grep'], v => ['curl', 'grep']);
my %reads;
if (grep { $tls_tools{$_->[0]} } @probes) {
  my @curlrc = map { "$_/.curlrc" } grep { defined && $_ ne '' } @ENV{qw(CURL_HOME XDG_CONFIG_HOME HOME)},
    (getpwuid($<))[7];
  push @curlrc, "$ENV{XDG_CONFIG_HOME}/curlrc" if defined $ENV{XDG_CONFIG_HOME};
  my $system = -x '/usr/bin/python3' && in_path_is('timeout');
  %reads = map { my $k = $_; $k => $system && !grep { !in_path_is($_) } @{$tls_tools{$k}} } keys %tls_tools;
  $reads{$_} &&= !grep { -e $_ } @curlrc for qw(o y v);
  $reads{$_} &&= !grep { defined $ENV{$_} } qw(https_proxy HTTPS_PROXY all_proxy ALL_PROXY) for qw(o y v);
}
my @to_reader = grep { $reads{$probes[$_][0]} } 0 .. $#probes;
sub reader_question { my ($k, @a) = @{$_[0]}; pop @a; return [$k, (@a, '', '', '')[0 .. 3]] }
my $reader = @to_reader && tls_reader(map { reader_question($probes[$_]) } @to_reader);
$probes[$_] = ['c', $probes[$_][-1]] for grep { $probes[$_][0] =~ /^[xoyv]$/ } 0 .. $#probes;
my %by_reader = map { $_ => 1 } $reader ? @to_reader : ();
my @jobs = grep { $probes[$_][0] =~ /^[cC]$/ && !$by_reader{$_} } 0 .. $#probes;
if ($reader) { $running{fileno $reader} = ['reader', $reader, ''] }
# A select bit vector of these file numbers (a hash's keys).
sub fd_bits { my $bits = ''; vec($bits, $_, 1) = 1 for keys %{$_[0]}; return $bits }
# The handles of these running jobs (file number => [job, handle, output]) that have something to read.
sub can_read {
  my ($jobs) = @_;
  return () unless %$jobs;
  my $n = select(my $ready = fd_bits($jobs), undef, undef, undef);
  return $n > 0 ? map { $jobs->{$_}[1] } grep { vec($ready, $_, 1) } keys %$jobs : ();
}
sub tls_reader {
  open(my $fh, '-|', '/usr/bin/timeout', '5', '/usr/bin/python3', '-I', '-S', '-c', $TLS_READER, map { @$_ } @_)
    or return undef;
  return $fh;
}
sub reader_answers {
  my ($out, $ok) = @_;
  my @lines = split(/\n/, $out);
  $ok &&= @lines == @to_reader;
  my @left;
  for my $n (0 .. $#to_reader) {
    if ($ok && $lines[$n] =~ /^([0-9]+) ((?:[0-9a-f]{2})*)$/) { $ran{$to_reader[$n]} = [$1, pack('H*', $2)] }
    else { push @left, $to_reader[$n] }
  }
  return @left;
}
# A command with standard input (kind C): sh reads it from a pipe a child of its own fills, so no input size can
# stall the batch. The children exit with plain exit: nothing is printed before the answers, no buffer to copy.
sub without_input { open(my $fh, '-|', '/bin/sh', '-c', $_[0]) or return undef; return $fh }
sub with_input {
  my ($command, $input) = @_;
  $input = '' unless defined $input;
  my $pid = open(my $fh, '-|');
  return undef unless defined $pid;
  return $fh if $pid;
  pipe(my $r, my $w) or exit 127;
  my $writer = fork;
  exit 127 unless defined $writer;
  if (!$writer) { close $r; local $SIG{PIPE} = 'DEFAULT'; print {$w} $input; close $w; exit 0 }
  close $w; open(STDIN, '<&', $r) or exit 127; close $r;
  exec { '/bin/sh' } '/bin/sh', '-c', $command;
  exit 127;
}
my $started = 0;
sub start_jobs {
  while (keys %running < ${PROBE_COMMANDS_AT_ONCE} && $started < @jobs) {
    my $i = $jobs[$started++];
    my $fh = $probes[$i][0] eq 'C' ? with_input(@{$probes[$i]}[1, 2]) : without_input($probes[$i][1]);
    if ($fh) { $running{fileno $fh} = [$i, $fh, ''] }
    else { $ran{$i} = [127, ''] }
  }
}
# The reader and the first commands run while the evaluator answers the rest: their answers wait in their pipes.
start_jobs();
my (%state, %hash, %status, @files, %port);
my @ports = do { my %seen; grep { $_->[0] eq 't' && !$seen{"$_->[1] $_->[2]"}++ } @probes };
# Every port at once: a non-blocking connect each (Socket alone: IO::Socket::INET's modules cost twice its time).
if (@ports) {
  require Socket;
  my %socket;
  for my $p (@ports) {
    my $key = "$p->[1] $p->[2]";
    my $address = $p->[1] =~ /^[0-9.]+$/ && $p->[2] =~ /^[0-9]+$/ && $p->[2] <= 65535 && Socket::inet_aton($p->[1]);
    my $type = Socket::SOCK_STREAM() | Socket::SOCK_NONBLOCK();
    my $s;
    if (!$address || !socket($s, Socket::PF_INET(), $type, Socket::IPPROTO_TCP())) { $port{$key} = 1; next }
    if (connect($s, Socket::pack_sockaddr_in($p->[2], $address))) { $port{$key} = 0; close($s); next }
    if (!$!{EINPROGRESS}) { $port{$key} = 1; close($s); next }
    $socket{fileno $s} = [$key, $s];
  }
  my $left = ${PORT_CONNECT_SECONDS};
  while (%socket && $left > 0) {
    my ($n, $timeleft) = select(undef, my $ready = fd_bits(\%socket), undef, $left);
    last if $n < 0;
    $left = $timeleft;
    for my $f (grep { vec($ready, $_, 1) } keys %socket) {
      my ($key, $s) = @{delete $socket{$f}};
      my $error = getsockopt($s, Socket::SOL_SOCKET(), Socket::SO_ERROR());
      $port{$key} = !defined $error || unpack('i', $error) ? 1 : 0;
      close($s);
    }
  }
  for (values %socket) { $port{$_->[0]} = 124; close($_->[1]) }
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
my %digested;
push @files, grep { -f $_ && !$digested{$_}++ } map { $_->[1] } grep { $_->[0] eq 'h' && @$_ == 3 } @probes;
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
my %nss;
if (open(my $fh, '<', '/etc/nsswitch.conf')) {
  while (my $line = <$fh>) { $line =~ s/#.*//; $nss{$1} = $2 if $line =~ /^\s*(\w+)\s*:\s*(.*?)\s*$/ }
  close($fh);
}
my $nscd = -e '/run/nscd/socket' || -e '/var/run/nscd/socket';
sub files_first { my $s = $nss{$_[0]}; !$nscd && defined $s && $s =~ /^files(\s|$)/ && $s !~ /\[/ }
sub files_only {
  !$nscd && !exists $nss{initgroups} && ($nss{passwd} // '') eq 'files' && ($nss{group} // '') eq 'files';
}
my $NAME = qr/[A-Za-z_][A-Za-z0-9_.-]*\$?/;
my $ID = qr/(?:0|[1-9][0-9]{0,9})/;
my %table;
sub table {
  my ($file) = @_;
  return $table{$file} if exists $table{$file};
  my $row = $file eq '/etc/group' ? qr/^($NAME):([!-9;-~]*):($ID):((?:$NAME(?:,$NAME)*)?)$/
    : qr/^($NAME):([!-9;-~]*):($ID):($ID):([ -9;-~]*):([!-9;-~]*):([!-9;-~]*)$/;
  my @rows;
  open(my $fh, '<', $file) or return $table{$file} = undef;
  while (my $line = <$fh>) {
    $line =~ s/\n\z//;
    next if $line eq '' || $line =~ /^#/;
    my @fields = $line =~ $row;
    return $table{$file} = undef if !@fields || grep { /^[0-9]+$/ && $_ > 4294967294 } @fields[2, 3];
    push @rows, \@fields;
  }
  close($fh);
  return $table{$file} = \@rows;
}
sub entry {
  my ($db, $name) = @_;
  return undef unless $name =~ /^$NAME$/ && files_first($db);
  my $rows = table("/etc/$db") or return undef;
  my ($found) = grep { $_->[0] eq $name } @$rows;
  return $found;
}
sub group_names {
  my ($pw) = @_;
  return undef unless files_only();
  my $users = table('/etc/passwd') or return undef;
  my $groups = table('/etc/group') or return undef;
  my ($by_uid) = grep { $_->[2] eq $pw->[2] } @$users;
  return undef unless $by_uid->[3] eq $pw->[3];
  my $member = sub { my ($g) = @_; $g->[2] ne $pw->[3] && grep { $_ eq $pw->[0] } split(/,/, $g->[3]) };
  my @gids = ($pw->[3], map { $_->[2] } grep { $member->($_) } @$groups);
  my (%seen, @names);
  for my $gid (@gids) {
    my @named = grep { $_->[2] eq $gid } @$groups;
    return undef if $seen{$gid}++ || @named != 1;
    push @names, $named[0][0];
  }
  return join(' ', @names) . "\n";
}
sub native {
  my ($k, @a) = @{$_[0]};
  if ($k eq 'g') { my $g = entry('group', $a[0]) or return undef; return [0, join(':', @$g) . "\n"] }
  if ($k eq 'w') {
    my $pw = entry('passwd', $a[0]) or return undef;
    my $names = group_names($pw) // return undef;
    return [0, join(':', @$pw) . "\n" . $names];
  }
  if ($k eq 'e') { return [($a[0] eq 'd' ? -d $a[1] : -e $a[1]) ? 0 : 1, ''] }
  if ($k eq 'h' && @a == 2) { return -f $a[0] && defined $hash{$a[0]} ? [0, "$hash{$a[0]}  -\n"] : undef }
  if ($k eq 'h') {
    pop @a;
    return undef if grep { !-f $_ || -s _ > ${PROBE_READ_MAX_BYTES} } @a or !eval { require Digest::SHA; 1 };
    my $sha = Digest::SHA->new(256);
    for my $path (@a) {
      open(my $fh, '<:raw', $path) or return undef;
      local $/;
      $sha->add(<$fh> // '');
      close($fh);
    }
    return [0, $sha->hexdigest . "  -\n"];
  }
  if ($k eq 'l') {
    my ($want, $path) = @a;
    return undef if $want =~ /[^\t -~]|^-/ || $path =~ /^-/ || !-f $path || -s _ > ${PROBE_READ_MAX_BYTES};
    open(my $fh, '<:raw', $path) or return undef;
    local $/;
    my $text = <$fh> // '';
    close($fh);
    return undef if $text =~ /[^\t\n -~]/;
    my @lines = split(/\n/, $text, -1);
    pop @lines if @lines && $lines[-1] eq '';
    return [(grep { $_ eq $want } @lines) ? 0 : 1, ''];
  }
  if ($k eq 'f') {
    if (!lstat($a[0])) { return $!{ENOENT} ? [1, ''] : undef }
    return undef unless -f $a[0] && -s _ <= ${PROBE_READ_MAX_BYTES} && open(my $fh, '<:raw', $a[0]);
    local $/;
    my $bytes = <$fh> // '';
    close($fh);
    return [0, $bytes];
  }
  if ($k eq 'i') {
    my $collate = $ENV{LC_ALL} || $ENV{LC_COLLATE} || $ENV{LANG} || 'C';
    return undef if ($collate ne 'C' && $collate ne 'POSIX') || defined $ENV{QUOTING_STYLE};
    return undef if -l $a[0] || !-d _ || !opendir(my $dh, $a[0]);
    my @names = sort grep { !/^\./ } readdir($dh);
    closedir($dh);
    return undef if grep { /[^ -~]/ } @names;
    return [0, join('', map { "$_\n" } @names)];
  }
  if ($k eq 'm') {
    my ($dir, $pattern) = @a;
    my $plain = qr/[A-Za-z0-9._-]+/;
    return undef unless $dir =~ m{^(?:/$plain)+\z} && $pattern =~ /^[A-Za-z0-9._*-]+\z/ && !-l $dir && -d _;
    (my $re = quotemeta($pattern)) =~ s/\\\*/.*/g;
    my ($base) = $dir =~ m{([^/]+)\z};
    return [0, ''] if $base =~ /^$re\z/s;
    opendir(my $dh, $dir) or return undef;
    my @names = grep { $_ ne '.' && $_ ne '..' } readdir($dh);
    closedir($dh);
    return undef if grep { /[^ -~]/ } @names;
    return [(grep { /^$re\z/s } @names) ? 0 : 1, ''];
  }
  if ($k eq 'n') {
    open(my $fh, '<', '/proc/sys/kernel/hostname') or return undef;
    my $node = <$fh> // '';
    close($fh);
    my $plain = qr/[A-Za-z0-9][A-Za-z0-9.-]*/;
    my ($name) = $node =~ /^($plain)\n\z/;
    return undef unless defined $name && $a[0] =~ /^$plain\z/;
    return [$name eq $a[0] ? 0 : 1, ''];
  }
  if ($k eq 's') {
    my ($key, $value) = @a;
    return undef unless $key =~ /^[a-z0-9_]+(?:\.[a-z0-9_]+)+\z/ && $value =~ /^[0-9]+\z/;
    (my $path = "/proc/sys/$key") =~ tr{.}{/};
    return undef unless -f $path && open(my $fh, '<', $path);
    my $text = do { local $/; <$fh> } // '';
    close($fh);
    my ($number) = $text =~ /^([0-9]+)\n\z/;
    return undef unless defined $number;
    return [$number eq $value ? 0 : 1, ''];
  }
  return undef;
}
for my $i (grep { $probes[$_][0] =~ /^[gwehlfimns]$/ } 0 .. $#probes) {
  my $answer = native($probes[$i]);
  if ($answer) { $ran{$i} = $answer } else { $probes[$i] = ['c', $probes[$i][-1]]; push @jobs, $i }
}
while ($started < @jobs || %running) {
  start_jobs();
  for my $fh (can_read(\%running)) {
    my $job = $running{fileno $fh};
    my $n = sysread($fh, my $chunk, 65536);
    next if !defined $n && $!{EINTR};
    if ($n) { $job->[2] .= $chunk; next }
    delete $running{fileno $fh};
    close($fh);
    if ($job->[0] eq 'reader') { push @jobs, reader_answers($job->[2], $? == 0); next }
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

/**
 * A kind the evaluator answers itself where it can (a unit with the batch's one systemctl call; the native kinds
 * where their answer is provable): its letter, its arguments, then its own command, which runs when it cannot.
 */
const withCommand = (letter: string, args: readonly string[], p: CommandProbe) =>
  [letter, ...[...args, probeCommand(p)].map(hex)].join(' ')

/** The evaluator's input for these probes. */
export function probeInput(probes: readonly Probe[]): string {
  const line = (p: Probe): string => {
    switch (p.kind) {
      case 'path':
        return `p ${hex(p.path)}`
      case 'packages':
        return ['d', ...p.names.map(hex)].join(' ')
      case 'unit':
        return withCommand('u', [p.name], p)
      case 'port':
        return `t ${hex(p.address)} ${hex(String(p.port))}`
      case 'group':
        return withCommand('g', [p.name], p)
      case 'user':
        return withCommand('w', [p.name], p)
      case 'test':
        return withCommand('e', [p.test === 'exists' ? 'e' : 'd', p.path], p)
      case 'digest':
        return withCommand('h', p.paths, p)
      case 'line':
        return withCommand('l', [p.line, p.path], p)
      case 'content':
        return withCommand('f', [p.path], p)
      case 'listing':
        return withCommand('i', [p.dir], p)
      case 'entry':
        return withCommand('m', [p.dir, p.pattern], p)
      case 'hostname':
        return withCommand('n', [p.name], p)
      case 'sysctl':
        return withCommand('s', [p.key, p.value], p)
      case 'served':
        return withCommand('x', [p.address, String(p.port), p.starttls ?? '', p.certFile], p)
      case 'get':
        return withCommand('o', [p.url, p.caFile ?? ''], p)
      case 'url':
        return withCommand('y', [p.url, p.caFile ?? ''], p)
      case 'health': {
        // Their count first: a URL holding a space cannot pass for two.
        const urls = `${p.urls.length} ${p.urls.join(' ')}`
        return withCommand('v', [urls, p.caFile ?? '', p.certFile ?? '', p.keyFile ?? ''], p)
      }
      case 'read':
        return `r ${hex(p.path)}`
      case 'run':
        return p.stdin === undefined ? `c ${hex(p.command)}` : `C ${hex(p.command)} ${hex(p.stdin)}`
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
    case 'group':
      return groupLookupCommand(probe.name)
    case 'user':
      return userLookupCommand(probe.name)
    case 'test':
      return pathTestCommand(probe.test, probe.path)
    case 'digest':
      return contentDigestCommand(probe.paths)
    case 'line':
      return lineInFileCommand(probe.line, probe.path)
    case 'content':
      return fileContentCommand(probe.path)
    case 'listing':
      return listingCommand(probe.dir)
    case 'entry':
      return entryMatchCommand(probe.dir, probe.pattern)
    case 'hostname':
      return hostnameIsCommand(probe.name)
    case 'sysctl':
      return sysctlIsCommand(probe.key, probe.value)
    case 'served':
      return serialsCommand(probe)
    case 'get':
      return httpGetCommand(probe.url, probe.caFile)
    case 'url':
      return urlReadyCommand(probe.url, probe.caFile)
    case 'health':
      return healthyCommand(probe.urls, clientTls(probe))
    case 'run':
      return probe.command
    case 'read':
      return undefined
  }
}

/** A health probe's TLS files, when it has them all. */
function clientTls(probe: { caFile?: string; certFile?: string; keyFile?: string }): ClientTls | undefined {
  const { caFile, certFile, keyFile } = probe
  return caFile !== undefined && certFile !== undefined && keyFile !== undefined
    ? { caFile, certFile, keyFile }
    : undefined
}

/** The key under which a probe's answer is kept: a command's text (and its standard input), or the path read. */
export function probeKey(probe: Probe): string {
  const command = probeCommand(probe)
  if (command === undefined) return `read\u0000${(probe as { path: string }).path}`
  return probe.kind === 'run' && probe.stdin !== undefined
    ? `run\u0000${command}\u0000stdin\u0000${probe.stdin}`
    : `run\u0000${command}`
}
