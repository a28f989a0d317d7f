package RaceQ::Bench;

# The moving parts of the benchmarks: one httpd with several locations, the
# SQS emulator and raceqd when fifo mode is measured, the load tools (wrk,
# ab, raceq-fire), and peak memory sampled from /proc while a tool runs.
# Everything listens on 127.0.0.1 and every wait is bounded.

use strict;
use warnings;

use Cwd qw(abs_path);
use File::Basename qw(dirname);
use File::Temp qw(tempdir);
use IO::Socket::INET;
use JSON::PP;
use POSIX qw(WNOHANG setsid);
use Time::HiRes qw(sleep time);

use Test::RaceQ::HTTP;

my $JSON = JSON::PP->new->utf8->canonical;

sub new {
    my ($class, %args) = @_;
    my $root = $args{root} // abs_path(dirname(__FILE__) . '/../../..');
    my $self = bless {
        root    => $root,
        httpd   => $ENV{BENCH_HTTPD} || '/usr/sbin/apache2',
        modules => $ENV{BENCH_MODULES_DIR} || '/usr/lib/apache2/modules',
        keep    => $ENV{BENCH_KEEP},
        owner   => $$,
        procs   => {},
    }, $class;
    $self->{tmp} = tempdir('raceq-bench-XXXXXX', TMPDIR => 1, CLEANUP => !$self->{keep});
    if ($> == 0) {
        my (undef, undef, $uid, $gid) = getpwnam('www-data');
        die "user www-data is missing\n" unless defined $uid;
        chown $uid, $gid, $self->{tmp};
    }
    return $self;
}

sub root { $_[0]{root} }
sub tmp  { $_[0]{tmp} }
sub port { $_[0]{port} }

sub free_port {
    my $s = IO::Socket::INET->new(
        LocalAddr => '127.0.0.1', LocalPort => 0, Proto => 'tcp', Listen => 1,
    ) or die "no free port: $!\n";
    my $port = $s->sockport;
    close $s;
    return $port;
}

# --- processes ------------------------------------------------------------

# Starts argv in its own session, stdout and stderr to $log; returns the pid.
sub spawn {
    my ($self, $name, $argv, %opt) = @_;

    my $pid = fork // die "fork: $!\n";
    if ($pid == 0) {
        setsid();
        open STDIN, '<', '/dev/null';
        open STDOUT, '>>', $opt{log} // '/dev/null';
        open STDERR, '>&', \*STDOUT;
        my $env = $opt{env} // {};
        @ENV{ keys %$env } = @{$env}{ keys %$env };
        as_httpd_user() if $opt{as_httpd_user};
        { exec @$argv }
        print STDERR "exec $argv->[0]: $!\n";
        POSIX::_exit(127);
    }
    $self->{procs}{$name} = $pid;
    return $pid;
}

# As root, a process sharing httpd's store runs as httpd's User (www-data),
# so that the SQLite files either of them creates stay writable by both.
sub as_httpd_user {
    return unless $> == 0;
    my (undef, undef, $uid, $gid) = getpwnam('www-data');
    POSIX::setgid($gid);
    $) = "$gid $gid";
    POSIX::setuid($uid);
}

sub stop_proc {
    my ($self, $name) = @_;
    my $pid = delete $self->{procs}{$name} or return;

    kill 'TERM', $pid;
    my $until = time + 15;
    while (time < $until) {
        return if waitpid($pid, WNOHANG) != 0;
        sleep 0.05;
    }
    kill 'KILL', -$pid;
    waitpid $pid, 0;
}

sub alive {
    my ($self, $name) = @_;
    my $pid = $self->{procs}{$name} or return 0;

    return waitpid($pid, WNOHANG) == 0;
}

sub pid { $_[0]{procs}{ $_[1] } }

sub cleanup {
    my ($self) = @_;
    return unless $$ == $self->{owner};

    # Every process is asked to stop first, then each is waited for.
    my @names = grep { $_ ne 'fauxqs' } keys %{ $self->{procs} };
    kill 'TERM', grep { $_ } map { $self->{procs}{$_} } @names;
    $self->stop_proc($_) for @names;
    if ($self->{fauxqs}) {
        $self->{fauxqs}->stop;
        delete $self->{fauxqs};
    }
}

sub DESTROY {
    my ($self) = @_;
    local ($?, $!, $@);
    $self->cleanup;
}

# --- memory ---------------------------------------------------------------

# The process and its children (httpd's parent and its worker processes).
sub tree_pids {
    my ($pid) = @_;
    return () unless $pid && -d "/proc/$pid";

    my @pids = ($pid);
    opendir my $dh, '/proc' or return @pids;
    for my $p (grep { /^\d+$/ } readdir $dh) {
        open my $fh, '<', "/proc/$p/stat" or next;
        my $stat = <$fh> // '';
        close $fh;
        push @pids, $p if $stat =~ /\)\s+\S\s+(\d+)/ && $1 == $pid;
    }
    closedir $dh;
    return @pids;
}

sub rss_kib {
    my $sum = 0;
    for my $pid (@_) {
        open my $fh, '<', "/proc/$pid/status" or next;
        while (my $line = <$fh>) {
            if ($line =~ /^VmRSS:\s+(\d+)\s+kB/) {
                $sum += $1;
                last;
            }
        }
        close $fh;
    }
    return $sum;
}

# Peak RSS (KiB) of each named process tree so far; see sample().
sub memory_now {
    my ($self) = @_;
    my %now;

    for my $name (grep { /^(?:httpd|raceqd)/ } keys %{ $self->{procs} }) {
        my $pid = $self->{procs}{$name} or next;
        $now{$name} = rss_kib(tree_pids($pid));
    }
    return \%now;
}

sub sample {
    my ($self, $peak) = @_;
    my $now = $self->memory_now;

    for my $k (keys %$now) {
        $peak->{$k} = $now->{$k} if !defined $peak->{$k} || $now->{$k} > $peak->{$k};
    }
}

# Runs a load tool to its end (killed after $timeout s), sampling memory every
# 50 ms. Returns { status, stdout, stderr, peak_rss_kib => { httpd, raceqd } }.
sub run_tool {
    my ($self, $argv, %opt) = @_;
    my $n = ++$self->{tool_runs};
    my ($out, $err) = ("$self->{tmp}/tool-$n.out", "$self->{tmp}/tool-$n.err");
    my $timeout = $opt{timeout} // 120;
    my %peak;

    my $pid = fork // die "fork: $!\n";
    if ($pid == 0) {
        open STDIN, '<', '/dev/null';
        open STDOUT, '>', $out;
        open STDERR, '>', $err;
        { exec @$argv }
        print STDERR "exec $argv->[0]: $!\n";
        POSIX::_exit(127);
    }
    $opt{on_start}->($pid) if $opt{on_start};
    my $until = time + $timeout;
    my $status;
    while (1) {
        $self->sample(\%peak);
        if (waitpid($pid, WNOHANG) == $pid) {
            $status = $? >> 8;
            last;
        }
        if (time > $until) {
            kill 'KILL', $pid;
            waitpid $pid, 0;
            $status = -1;
            last;
        }
        sleep 0.05;
    }
    return {
        status => $status, timed_out => $status == -1 ? 1 : 0,
        stdout => slurp($out), stderr => slurp($err), peak_rss_kib => \%peak,
    };
}

sub slurp {
    my ($file) = @_;
    open my $fh, '<', $file or return '';
    local $/;
    my $text = <$fh> // '';
    close $fh;
    return $text;
}

# --- httpd ----------------------------------------------------------------

sub httpd_conf {
    my ($self, $locations) = @_;
    my $t = $self->{tmp};
    my $m = $self->{modules};
    my $user = $> == 0 ? "User www-data\nGroup www-data\n" : '';

    # Enough threads for 1000 fifo requests waiting at once; the processes
    # are started up front and never retired, so no run pays for forking.
    return <<"EOF";
ServerRoot "$t"
ServerName 127.0.0.1
Listen 127.0.0.1:$self->{port}
PidFile "$t/httpd.pid"
ErrorLog "$t/error_log"
LogLevel warn
DefaultRuntimeDir "$t"
Mutex file:$t default
LoadModule mpm_event_module $m/mod_mpm_event.so
LoadModule authz_core_module $m/mod_authz_core.so
LoadModule raceq_module @{[ $ENV{BENCH_MODULE} // "$self->{root}/.libs/mod_raceq.so" ]}
$user
StartServers 2
ServerLimit 17
ThreadsPerChild 64
ThreadLimit 64
MinSpareThreads 64
MaxSpareThreads 1088
MaxRequestWorkers 1088
MaxConnectionsPerChild 0
ListenBacklog 2048
Timeout 60
KeepAlive On
MaxKeepAliveRequests 0
KeepAliveTimeout 5
RaceQStore sqlite3 $t/toy.db
$locations
EOF
}

sub wait_http {
    my ($self, $timeout) = @_;
    my $until = time + $timeout;

    while (time < $until) {
        return 0 unless $self->alive('httpd');
        my ($res) = Test::RaceQ::HTTP::exchange(
            port => $self->{port}, timeout => 2,
            requests => [{ raw => "OPTIONS * HTTP/1.0\r\n\r\n" }],
        );
        return 1 if $res->{status};
        sleep 0.1;
    }
    return 0;
}

# Starts httpd with these <Location> sections; dies with its log if it fails.
sub httpd_start {
    my ($self, $locations, %opt) = @_;

    $self->httpd_stop;
    $self->{port} //= free_port();
    my $conf = "$self->{tmp}/httpd.conf";
    open my $fh, '>', $conf or die "$conf: $!\n";
    print $fh $self->httpd_conf($locations);
    close $fh;

    $self->spawn('httpd', [$self->{httpd}, '-d', $self->{tmp}, '-f', $conf, '-DFOREGROUND'],
                 log => "$self->{tmp}/httpd.stderr", env => $opt{env});
    return if $self->wait_http(15);
    my $why = slurp("$self->{tmp}/httpd.stderr") . slurp("$self->{tmp}/error_log");
    $self->httpd_stop;
    die "httpd did not start:\n$why";
}

sub httpd_stop { $_[0]->stop_proc('httpd') }

# Lines of level error or worse written to httpd's error_log.
sub httpd_errors {
    my ($self) = @_;
    return grep { /\[[\w.]*:(?:error|crit|alert|emerg)\]/ }
        split /\n/, slurp("$self->{tmp}/error_log");
}

# One POST; returns { status, body, headers }.
sub post {
    my ($self, $path, $body, %headers) = @_;
    my ($res) = Test::RaceQ::HTTP::exchange(
        port => $self->{port}, timeout => 30,
        requests => [{
            method => 'POST', path => $path, body => $body,
            headers => [
                ['Host', "127.0.0.1:$self->{port}"], ['Connection', 'close'],
                ['Content-Type', 'application/json'],
                ['Content-Length', length $body], map { [$_, $headers{$_}] } keys %headers,
            ],
        }],
    );
    return $res;
}

sub url {
    my ($self, $path) = @_;
    return "http://127.0.0.1:$self->{port}$path";
}

# --- the SQS emulator and raceqd ------------------------------------------

sub fauxqs_start {
    my ($self, $queue) = @_;

    require Test::RaceQ::Fauxqs;
    $self->{fauxqs} = Test::RaceQ::Fauxqs->start(queue => $queue);
    return $self->{fauxqs};
}

sub fauxqs { $_[0]{fauxqs} }

sub raceqd_bin {
    my ($self) = @_;
    return $ENV{BENCH_RACEQD} || "$self->{root}/bin/raceqd";
}

# Starts a raceqd named $opt{name} (default "raceqd") on the queue
# $opt{queue} (default the emulator's first) with its own socket,
# $opt{socket}, and this toy write duration. Each fifo location has its own
# queue and raceqd, so no scenario restarts one while messages are in flight.
sub raceqd_start {
    my ($self, %opt) = @_;
    my $t = $self->{tmp};
    my $fq = $self->{fauxqs} or die "raceqd needs the emulator\n";
    my $name = $opt{name} // 'raceqd';
    my $sock = $opt{socket} // "$t/$name.sock";

    $self->stop_proc($name);
    unlink $sock;
    my @argv = (
        $self->raceqd_bin, '--foreground', '--queue-url', $opt{queue} // $fq->queue_url,
        '--endpoint', $fq->endpoint, '--region', $fq->region,
        '--store', "sqlite3 $t/toy.db", '--socket', $sock,
        '--apply-delay', $opt{delay} // '0 0', '--workers', $opt{workers} // 16,
        '--pollers', $opt{pollers} // 1, '--wait-seconds', $opt{wait_seconds} // 20,
        '--log-level', 'warn', '--log-file', "$t/$name.log",
    );
    $self->spawn($name, \@argv, log => "$t/$name.stderr", env => $fq->env,
                 as_httpd_user => 1);
    my $until = time + 15;
    while (time < $until) {
        return $sock if -S $sock;
        last unless $self->alive($name);
        sleep 0.05;
    }
    my $why = slurp("$t/$name.stderr") . slurp("$t/$name.log");
    $self->stop_proc($name);
    die "$name did not start:\n$why";
}

# Lines of level error or worse in the raceqd logs.
sub raceqd_errors {
    my ($self) = @_;
    my @lines;

    for my $log (glob "$self->{tmp}/raceqd*.log") {
        push @lines, grep { /\[[\w.]*:(?:error|crit|alert|emerg)\]/ } split /\n/, slurp($log);
    }
    return @lines;
}

# --- load tools -----------------------------------------------------------

# wrk with bench/wrk-raceq.lua: returns its RACEQ-WRK figures plus the
# memory peaks, or { error => ... }. Without a prefix, the script makes one
# of its own for the run.
sub wrk {
    my ($self, %o) = @_;
    my @argv = (
        'wrk', '-t', $o{threads} // ($o{connections} < 2 ? 1 : 2),
        '-c', $o{connections}, '-d', "$o{seconds}s",
        '--timeout', '30s', '-s', "$self->{root}/bench/wrk-raceq.lua",
        $self->url($o{path}), '--', $o{users} // 100,
        (defined $o{prefix} ? $o{prefix} : ()),
    );
    my $run = $self->run_tool(\@argv, timeout => $o{seconds} + 40);
    my ($line) = $run->{stdout} =~ /^RACEQ-WRK (\{.*\})$/m;
    my $res = $line ? eval { $JSON->decode($line) } : undef;
    return { error => "wrk failed (status $run->{status}): $run->{stderr}$run->{stdout}" }
        unless $res;
    $res->{rps} = $res->{duration_us} ? $res->{requests} * 1e6 / $res->{duration_us} : 0;
    $res->{peak_rss_kib} = $run->{peak_rss_kib};
    $res->{$_} = $o{$_} for qw(path connections users);
    return $res;
}

# ab with bench/body.json (the location must have RaceQGenerateId On).
sub ab {
    my ($self, %o) = @_;
    my @argv = ('ab', '-q', '-k', '-n', $o{requests}, '-c', $o{connections}, '-s', 30,
                '-p', "$self->{root}/bench/body.json", '-T', 'application/json',
                $self->url($o{path}));
    my $run = $self->run_tool(\@argv, timeout => 120);
    my $out = $run->{stdout};
    my %r = (path => $o{path}, connections => $o{connections});
    ($r{requests}) = $out =~ /^Complete requests:\s+(\d+)/m;
    ($r{failed}) = $out =~ /^Failed requests:\s+(\d+)/m;
    ($r{rps}) = $out =~ /^Requests per second:\s+([\d.]+)/m;
    $r{non2xx} = $out =~ /^Non-2xx responses:\s+(\d+)/m ? $1 : 0;
    for my $p (50, 90, 99) {
        $r{latency_us}{"p$p"} = $1 * 1000 if $out =~ /^\s+$p%\s+(\d+)/m;
    }
    return { error => "ab failed (status $run->{status}): $run->{stderr}$out" }
        unless $run->{status} == 0 && defined $r{rps} && defined $r{requests};
    $r{peak_rss_kib} = $run->{peak_rss_kib};
    return \%r;
}

# raceq-fire --json; returns its object plus the memory peaks.
sub fire {
    my ($self, %o) = @_;
    my @argv = ("$self->{root}/bin/raceq-fire", '--url', $self->url($o{path}), '--json',
                '--users', $o{users}, '--per-user', $o{per_user},
                (defined $o{concurrency} ? ('--concurrency', $o{concurrency}) : ()),
                '--timeout', $o{timeout} // 120);
    my $run = $self->run_tool(\@argv, timeout => ($o{timeout} // 120) + 30,
                              on_start => $o{on_start});
    my $res = eval { $JSON->decode($run->{stdout}) };
    return { error => "raceq-fire failed (status $run->{status}): $run->{stderr}" }
        unless ref $res eq 'HASH';
    delete $res->{by_user} if $o{users} > 20;
    $res->{peak_rss_kib} = $run->{peak_rss_kib};
    return $res;
}

1;
