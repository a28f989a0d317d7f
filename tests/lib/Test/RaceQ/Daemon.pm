package Test::RaceQ::Daemon;

# Runs bin/raceqd for a test file and speaks its wait channel, with an
# implementation of the frame format of its own (8-byte header "RQ", version,
# type, 32-bit big-endian length; a JSON payload), so that the tests check
# the protocol rather than reuse the C code under test.
#
#   my $d = Test::RaceQ::Daemon->start(dir => $tmp, env => $fq->env,
#                                      args => ['--workers', 4]);
#   my $c = $d->client;                       # one connection = one wait
#   $c->register($req_id, $user_id, $body);   # 'WAITING', 'DONE', 'CONFLICT'
#   $c->sent($seq); my $m = $c->answer(30);   # { type => 'DONE', seq => ... }
#   $d->history($user);                       # [[req_id, seq], ...] in apply order
#   $d->stop;                                 # SIGTERM; returns the exit status

use strict;
use warnings;

use Cwd qw(abs_path);
use Digest::SHA qw(sha256_hex);
use File::Basename qw(dirname);
use IO::Socket::UNIX;
use IO::Select;
use JSON::PP;
use POSIX qw(WNOHANG);
use Socket qw(SOCK_STREAM);
use Time::HiRes qw(sleep time);

my $ROOT = abs_path(dirname(__FILE__) . '/../../../..');
my %TYPES = (REGISTER => 1, SENT => 2, WAITING => 3, DONE => 4, CONFLICT => 5, ERROR => 6);
my %NAMES = reverse %TYPES;
my $JSON = JSON::PP->new->utf8->canonical;

sub root { $ROOT }

sub start {
    my ($class, %a) = @_;
    my $self = bless {
        dir => $a{dir}, env => $a{env} // {}, args => $a{args} // [],
        wrap => $a{wrap} // [], n => 0,
    }, $class;
    $self->{socket} = "$a{dir}/raceqd.sock";
    $self->{db} = $a{db} // "$a{dir}/toy.db";
    $self->{log} = "$a{dir}/raceqd.log";
    $self->spawn;
    return $self;
}

sub socket_path { $_[0]{socket} }
sub log_path    { $_[0]{log} }
sub db          { $_[0]{db} }
sub pid         { $_[0]{pid} }

sub command {
    my ($self) = @_;
    return (@{ $self->{wrap} }, "$ROOT/bin/raceqd", '--foreground',
            '--socket', $self->{socket}, '--store', "sqlite3 $self->{db}",
            '--pid-file', "$self->{dir}/raceqd.pid", '--log-file', $self->{log},
            '--wait-seconds', 1, @{ $self->{args} });
}

sub spawn {
    my ($self) = @_;
    my $pid = fork() // die "fork: $!";
    if ($pid == 0) {
        $ENV{$_} = $self->{env}{$_} for keys %{ $self->{env} };
        open(STDIN, '<', '/dev/null');
        exec($self->command) or die "exec raceqd: $!";
    }
    $self->{pid} = $pid;
    for (1 .. 600) {
        return $self if -S $self->{socket} && IO::Socket::UNIX->new(Peer => $self->{socket});
        die "raceqd exited at start:\n" . $self->log_text if waitpid($pid, WNOHANG) == $pid;
        sleep 0.05;
    }
    die "raceqd did not open its socket\n" . $self->log_text;
}

sub log_text {
    my ($self) = @_;
    open(my $fh, '<', $self->{log}) or return '';
    local $/;
    return <$fh>;
}

# Sends a signal and waits for the exit; returns the wait status.
sub stop {
    my ($self, $sig, $limit) = @_;
    my $pid = delete $self->{pid} or return undef;
    kill($sig // 'TERM', $pid);
    for (1 .. ($limit // 1200)) {
        return $? if waitpid($pid, WNOHANG) == $pid;
        sleep 0.05;
    }
    kill('KILL', $pid);
    waitpid($pid, 0);
    return -1;
}

sub restart {
    my ($self) = @_;
    $self->spawn;
}

sub alive { my $p = $_[0]{pid}; return $p && waitpid($p, WNOHANG) == 0 }

# CPU seconds (user + system) used so far, from /proc.
sub cpu_seconds {
    my ($self) = @_;
    open(my $fh, '<', "/proc/$self->{pid}/stat") or return undef;
    my @f = split ' ', (split /\) /, scalar <$fh>)[1];
    return ($f[11] + $f[12]) / POSIX::sysconf(POSIX::_SC_CLK_TCK());
}

sub client {
    my ($self) = @_;
    return Test::RaceQ::Daemon::Client->new($self->{socket});
}

# The user's history in apply order: [[req_id, seq, start, finish], ...].
sub history {
    my ($self, $user) = @_;
    $user =~ /^[\w.-]+$/ or die "user id for a test: $user";
    my $sql = 'select req_id, seq, start_us, finish_us from history'
        . " where user_id = '$user' order by ord";
    my @rows = map { [split /\|/] } split /\n/,
        `sqlite3 -cmd '.timeout 5000' '$self->{db}' "$sql"`;
    return \@rows;
}

sub writes {
    my ($self, $user) = @_;
    my $sql = "select writes from users where user_id = '$user'";
    my $n = `sqlite3 -cmd '.timeout 5000' '$self->{db}' "$sql"`;
    chomp $n;
    return $n eq '' ? 0 : $n;
}

sub applied_count {
    my ($self) = @_;
    my $n = `sqlite3 -cmd '.timeout 5000' '$self->{db}' "select count(*) from history" 2>/dev/null`;
    chomp $n;
    return $n || 0;
}

sub frame {
    my ($type, $payload) = @_;
    my $json = $JSON->encode($payload);
    return 'RQ' . pack('CCN', 1, $TYPES{$type}, length $json) . $json;
}

package Test::RaceQ::Daemon::Client;

use IO::Socket::UNIX;
use IO::Select;
use Time::HiRes qw(time);
use Digest::SHA qw(sha256_hex);

sub new {
    my ($class, $path) = @_;
    my $s = IO::Socket::UNIX->new(Peer => $path) or die "connect $path: $!";
    return bless { s => $s, buf => '' }, $class;
}

sub raw  { my ($self, $bytes) = @_; $self->{s}->syswrite($bytes) }
sub close { $_[0]{s}->close }

sub register {
    my ($self, $req_id, $user_id, $body) = @_;
    $self->{req_id} = $req_id;
    $self->raw(Test::RaceQ::Daemon::frame(REGISTER => {
        req_id => $req_id, user_id => $user_id, hash => sha256_hex($body) }));
    my $m = $self->answer(10) or return 'NONE';
    $self->{first} = $m;
    return $m->{type};
}

sub sent {
    my ($self, $seq) = @_;
    $self->raw(Test::RaceQ::Daemon::frame(SENT => { req_id => $self->{req_id}, seq => $seq }));
}

# The next frame as a hash with its type name, or undef (closed or timeout).
sub answer {
    my ($self, $timeout) = @_;
    my $until = time + ($timeout // 30);
    my $sel = IO::Select->new($self->{s});
    while (1) {
        if (length($self->{buf}) >= 8) {
            my ($magic, $ver, $type, $len) = unpack('a2CCN', $self->{buf});
            if (length($self->{buf}) >= 8 + $len) {
                my $json = substr($self->{buf}, 8, $len);
                substr($self->{buf}, 0, 8 + $len) = '';
                my $m = JSON::PP::decode_json($json);
                $m->{type} = $NAMES{$type} // "type$type";
                return $m;
            }
        }
        my $left = $until - time;
        return undef if $left <= 0 || !$sel->can_read($left);
        my $n = $self->{s}->sysread(my $chunk, 65536);
        return undef unless $n;
        $self->{buf} .= $chunk;
    }
}

1;
