package Test::RaceQ;

# A data-driven harness for mod_raceq on a real Apache httpd, in the style of
# Test::Nginx and built on Test::Base. See docs/testing.md for the block
# sections; in short, each block sends a request to <Location /t> (handled by
# "SetHandler raceq") on an httpd started with the block's configuration, and
# checks the answer, the store and the error_log.

use Test::Base -base;

use Cwd qw(abs_path);
use Fcntl qw(SEEK_SET);
use File::Basename qw(dirname);
use File::Temp qw(tempdir);
use IO::Socket::INET;
use JSON::PP;
use POSIX qw(WNOHANG setsid);
use Time::HiRes qw(sleep time);

use Test::RaceQ::HTTP;

our @EXPORT = qw(
    run_tests add_service add_block_check add_block_preprocessor config_var httpd_env log_level
    no_module free_port server_port tmp_dir http_get user_state
);

my $ROOT = abs_path(dirname(__FILE__) . '/../../..');
my $HTTPD = $ENV{TEST_RACEQ_HTTPD} || '/usr/sbin/apache2';
my $MODULES = $ENV{TEST_RACEQ_MODULES_DIR} || '/usr/lib/apache2/modules';
my $KEEP = $ENV{TEST_RACEQ_KEEP};
my $OWNER = $$;

my $Module = "$ROOT/.libs/mod_raceq.so";
my $LogLevel;
my ($Tmp, $Port, $Pid, $RunningConf);
my (@Services, @Started, %Vars, %HttpdEnv, @BlockChecks, @Preprocessors, %ExtraSections);
my $ServicesUp = 0;

my $JSON = JSON::PP->new->utf8->canonical->allow_nonref;

my %SECTIONS = map { ($_ => 1) } qw(
    config main_config log_level request raw_request more_headers chunked
    concurrent repeat timeout must_die error_code response_body
    response_body_like response_json response_headers response_headers_like
    interim_codes error_field error_message_like error_log no_error_log
    store store_unchanged
    ONLY SKIP LAST
);

# ---------------------------------------------------------------------------
# Settings a test file may change before run_tests().

# Runs without mod_raceq: <Location /t> gets no handler. For tests of the
# harness itself and for checks of plain httpd behaviour.
sub no_module { $Module = undef }

# The default LogLevel of every block ("warn raceq:info", or "warn" without
# the module).
sub log_level { $LogLevel = shift }

# Environment variables for the httpd process (e.g. AWS_* for fifo mode).
sub httpd_env {
    my %kv = @_;
    @HttpdEnv{ keys %kv } = values %kv;
}

# Defines or reads a placeholder: "$NAME" is replaced in the config, the
# request and the headers of every block. Names start with TEST_RACEQ_.
sub config_var {
    my ($name, $value) = @_;

    $Vars{$name} = $value if @_ > 1;
    return $Vars{$name};
}

# A service the httpd of this file depends on (an SQS emulator, raceqd...).
# start => sub { my ($ctx) = @_; ... } runs once, before the first httpd
# start; $ctx has tmp, port, root and a free_port function. It may call
# config_var() and httpd_env(). stop => sub { my ($ctx) = @_ } runs after
# httpd has stopped, in reverse order, also when the test file dies.
sub add_service {
    my %s = @_;

    die "add_service: name and start are required\n" unless $s{name} && $s{start};
    push @Services, \%s;
}

# An extra check run after the built-in ones:
# add_block_check(sub { my ($block, $responses, $log) = @_; ... }, @sections)
# where @sections are the extra section names the check understands.
sub add_block_check {
    my ($check, @sections) = @_;

    push @BlockChecks, $check;
    $ExtraSections{$_} = 1 for @sections;
}

# Runs before each block, e.g. to give blocks a common default:
# add_block_preprocessor(sub { my ($block) = @_;
#     $block->set_value(config => '...') unless defined $block->config });
sub add_block_preprocessor {
    push @Preprocessors, @_;
}

sub tmp_dir { init(); $Tmp }
sub httpd_pid { $Pid }
sub server_port { init(); $Port }

sub free_port {
    my $s = IO::Socket::INET->new(
        LocalAddr => '127.0.0.1', LocalPort => 0, Proto => 'tcp', Listen => 1,
    ) or die "no free port: $!\n";
    my $port = $s->sockport;
    close $s;
    return $port;
}

# ---------------------------------------------------------------------------
# The temporary directory, httpd and the services.

sub init {
    return if $Tmp;

    $Tmp = tempdir('raceq-XXXXXX', TMPDIR => 1, CLEANUP => !$KEEP);
    mkdir "$Tmp/htdocs";
    $Port = free_port();
    if ($> == 0) {
        my (undef, undef, $uid, $gid) = getpwnam('www-data');
        die "user www-data is missing\n" unless defined $uid;
        chown $uid, $gid, $Tmp, "$Tmp/htdocs";
    }
    %Vars = (
        TEST_RACEQ_PORT   => $Port,
        TEST_RACEQ_TMP    => $Tmp,
        TEST_RACEQ_SOCKET => "$Tmp/raceqd.sock",
        TEST_RACEQ_STORE  => "$Tmp/toy.db",
        TEST_RACEQ_ROOT   => $ROOT,
        %Vars,
    );
    Test::More::diag("keeping $Tmp") if $KEEP;
}

sub expand {
    my ($text) = @_;

    return $text unless defined $text;
    $text =~ s/\$(TEST_RACEQ_\w+)/defined $Vars{$1} ? $Vars{$1} : "\$$1"/ge;
    return $text;
}

sub start_services {
    return if $ServicesUp++;

    my $ctx = { tmp => $Tmp, port => $Port, root => $ROOT, free_port => \&free_port };
    for my $s (@Services) {
        $s->{start}->($ctx);
        unshift @Started, [$s, $ctx];
    }
}

sub stop_services {
    while (my $e = shift @Started) {
        my ($s, $ctx) = @$e;
        eval { $s->{stop}->($ctx) if $s->{stop}; 1 }
            or Test::More::diag("stopping service $s->{name}: $@");
    }
}

sub module_lines {
    my @mods = qw(mpm_event authz_core authz_host);
    my $text = '';
    for my $m (@mods) {
        $text .= "LoadModule ${m}_module $MODULES/mod_$m.so\n";
    }
    $text .= "LoadModule raceq_module $Module\n" if $Module;
    return $text;
}

sub user_lines {
    return '' unless $> == 0;
    return "User www-data\nGroup www-data\n";
}

sub httpd_conf {
    my ($block) = @_;

    my $main = expand($block->main_config) // '';
    my $loc = expand($block->config) // '';
    my $level = $block->log_level // $LogLevel // ($Module ? 'warn raceq:info' : 'warn');
    chomp $level;
    my $store = '';
    if ($Module && "$main\n$loc" !~ /^\s*RaceQStore\b/mi) {
        $store = "RaceQStore sqlite3 $Tmp/toy.db\n";
    }
    my $handler = $Module ? "    SetHandler raceq\n" : '';
    $loc =~ s/^/    /mg;

    return <<"EOF";
ServerRoot "$Tmp"
ServerName 127.0.0.1
Listen 127.0.0.1:$Port
PidFile "$Tmp/httpd.pid"
ErrorLog "$Tmp/error_log"
LogLevel $level
DefaultRuntimeDir "$Tmp"
Mutex file:$Tmp default
@{[ module_lines() ]}@{[ user_lines() ]}
StartServers 1
ServerLimit 2
ThreadsPerChild 16
ThreadLimit 16
MinSpareThreads 16
MaxSpareThreads 32
MaxRequestWorkers 32
Timeout 30
KeepAlive Off
DocumentRoot "$Tmp/htdocs"
LogFormat "%h %t \\"%r\\" %>s %b %D" timing
CustomLog "$Tmp/access_log" timing
$store
$main
<Location /t>
$handler$loc
</Location>
EOF
}

sub log_size {
    return -s "$Tmp/error_log" || 0;
}

sub read_log_from {
    my ($offset, $file) = @_;

    $file //= "$Tmp/error_log";
    open my $fh, '<:raw', $file or return '';
    seek $fh, $offset, SEEK_SET;
    local $/;
    my $text = <$fh> // '';
    close $fh;
    return $text;
}

sub spawn_httpd {
    my $pid = fork;
    die "fork: $!\n" unless defined $pid;
    return $pid if $pid;

    setsid();
    open STDIN, '<', '/dev/null';
    open STDOUT, '>>', "$Tmp/stderr";
    open STDERR, '>&', \*STDOUT;
    @ENV{ keys %HttpdEnv } = values %HttpdEnv;
    { exec $HTTPD, '-d', $Tmp, '-f', "$Tmp/httpd.conf", '-DFOREGROUND' }
    print STDERR "exec $HTTPD: $!\n";
    POSIX::_exit(127);
}

# Ready when httpd answers a request; gone when the parent process exited.
sub wait_ready {
    my ($timeout) = @_;

    my $until = time + $timeout;
    while (time < $until) {
        if (waitpid($Pid, WNOHANG) == $Pid) {
            $Pid = undef;
            return 0;
        }
        my ($res) = Test::RaceQ::HTTP::exchange(
            port => $Port, timeout => 2,
            requests => [{ raw => "OPTIONS * HTTP/1.0\r\n\r\n" }],
        );
        return 1 if $res->{status};
        sleep 0.1;
    }
    return 0;
}

# Returns '' when httpd is up with $conf, else what went wrong.
sub start_httpd {
    my ($conf) = @_;

    open my $fh, '>', "$Tmp/httpd.conf" or die "$Tmp/httpd.conf: $!\n";
    print $fh $conf;
    close $fh;

    my $err_at = -s "$Tmp/stderr" || 0;
    my $log_at = log_size();
    $Pid = spawn_httpd();
    return '' if wait_ready(15);

    my $why = "httpd did not start.\n" . read_log_from($err_at, "$Tmp/stderr")
        . read_log_from($log_at);
    stop_httpd();
    return $why;
}

sub stop_httpd {
    $RunningConf = undef;
    return unless $Pid;

    kill 'TERM', $Pid;
    my $until = time + 15;
    while (time < $until) {
        last if waitpid($Pid, WNOHANG) == $Pid;
        sleep 0.05;
    }
    if (kill 0, $Pid) {
        kill 'KILL', -$Pid;
        waitpid $Pid, 0;
    }
    $Pid = undef;
}

# Makes httpd run $conf: restarts only when it differs from the running one.
sub ensure_httpd {
    my ($conf) = @_;

    return '' if $Pid && defined $RunningConf && $RunningConf eq $conf;

    stop_httpd();
    start_services();
    my $err = start_httpd($conf);
    $RunningConf = $conf unless $err;
    return $err;
}

sub cleanup {
    return unless $$ == $OWNER;

    stop_httpd();
    stop_services();
}

# Waiting for httpd in an END block must not change the exit status.
END {
    local $?;
    cleanup();
}
$SIG{INT} = $SIG{TERM} = sub { cleanup(); exit 1 };

# ---------------------------------------------------------------------------
# Requests.

sub url_escape {
    my ($s) = @_;

    $s =~ s/([^A-Za-z0-9._~-])/sprintf('%%%02X', ord $1)/ge;
    return $s;
}

sub http_get {
    my ($path, $timeout) = @_;

    my ($res) = Test::RaceQ::HTTP::exchange(
        port => $Port, timeout => $timeout || 10,
        requests => [{
            method => 'GET', path => $path,
            headers => [['Host', "127.0.0.1:$Port"], ['Connection', 'close']],
        }],
    );
    return $res;
}

# The decoded GET /t/users/<id> answer, or a string saying what failed.
sub user_state {
    my ($user) = @_;

    my $res = http_get('/t/users/' . url_escape($user));
    return "GET users/$user: " . ($res->{error} // "status $res->{status}")
        unless $res->{status} == 200;
    my $state = eval { $JSON->decode($res->{body}) };
    return "GET users/$user: not JSON: $res->{body}" unless ref $state eq 'HASH';
    return $state;
}

sub filters_of {
    my ($block, $name) = @_;

    return $block->_section_map->{$name}{filters} // '';
}

sub header_lines {
    my ($text, $n) = @_;

    my (@set, %drop);
    for my $line (split /\n/, $text // '') {
        $line = subst_n($line, $n);
        next unless $line =~ /\S/;
        if ($line =~ /^!\s*(\S+)/) {
            $drop{ lc $1 } = 1;
            next;
        }
        die "bad header line: $line\n" unless $line =~ /^([^:\s]+):\s*(.*)$/;
        push @set, [$1, $2];
    }
    return (\@set, \%drop);
}

sub subst_n {
    my ($text, $n) = @_;

    return $text unless defined $text && defined $n;
    $text =~ s/%%N%%/$n/g;
    return $text;
}

# The request of a block as a spec for Test::RaceQ::HTTP, for the n-th copy.
sub request_spec {
    my ($block, $n) = @_;

    if (defined $block->raw_request) {
        return { raw => subst_n(expand($block->raw_request), $n) };
    }

    my $req = $block->request;
    my ($line, $body, $chunks);
    if (ref $req eq 'ARRAY') {
        ($line, @$chunks) = @$req;
        $line = subst_n(expand($line), $n);
        $chunks = [map { subst_n($_, $n) } @$chunks];
    }
    else {
        $req = subst_n(expand($req), $n);
        ($line, $body) = split /\n/, $req, 2;
        $body //= '';
        chomp $body unless filters_of($block, 'request') =~ /\beval\b/;
    }

    my ($method, $path) = $line =~ /^\s*(\S+)\s+(\S+)/
        or die "bad request line: $line\n";
    if (defined $block->chunked && defined $body) {
        my $size = $block->chunked =~ /(\d+)/ ? $1 : 16;
        $chunks = [unpack "(a$size)*", $body];
        $body = undef;
    }

    my ($set, $drop) = header_lines(expand($block->more_headers), $n);
    my %given = map { (lc $_->[0] => 1) } @$set;
    my @headers;
    my $add = sub {
        my ($k, $v) = @_;
        push @headers, [$k, $v] unless $given{ lc $k } || $drop->{ lc $k };
    };
    $add->('Host', "127.0.0.1:$Port");
    $add->('Connection', 'close');
    my $has_body = $chunks || length($body // '') || $method eq 'POST';
    $add->('Content-Type', 'application/json') if $has_body;
    if ($chunks) {
        $add->('Transfer-Encoding', 'chunked');
    }
    elsif ($has_body) {
        $add->('Content-Length', length $body);
    }
    push @headers, @$set;

    return { method => $method, path => $path, headers => \@headers,
             body => $body, chunks => $chunks };
}

# ---------------------------------------------------------------------------
# Checks.

sub lines_or_patterns {
    my ($v) = @_;

    return () unless defined $v;
    return ($v) if ref $v eq 'Regexp';
    return map { lines_or_patterns($_) } @$v if ref $v eq 'ARRAY';
    return grep { /\S/ } split /\n/, $v;
}

sub matches {
    my ($text, $pat) = @_;

    return ref $pat ? $text =~ $pat : index($text, $pat) >= 0;
}

# Lines of error_log that fail a block unless it expects them: levels error
# and worse, and a child that died on a signal (logged at notice).
sub bad_lines {
    my ($log) = @_;

    return grep {
        /^\[[^\]]*\] \[(?:[^\]:]*:)?(?:emerg|alert|crit|error)\]/
            || /AH00052: child pid \d+ exit signal/
    } split /\n/, $log;
}

sub check_status {
    my ($name, $block, $res) = @_;

    return unless defined $block->error_code;
    my ($want) = $block->error_code =~ /(\d+)/;
    my @bad = grep { $res->[$_]{status} != $want } 0 .. $#$res;
    ok(!@bad, "$name - status $want")
        or diag(map { describe($_ + 1, $res->[$_]) } @bad);
}

sub describe {
    my ($n, $r) = @_;

    my $err = $r->{error} ? " ($r->{error})" : '';
    return "request $n: status $r->{status}$err, body: $r->{body}\n";
}

sub check_each {
    my ($name, $res, $test) = @_;

    my @bad;
    for my $i (0 .. $#$res) {
        my $why = $test->($res->[$i], $i + 1);
        push @bad, "request " . ($i + 1) . ": $why\n" if defined $why;
    }
    ok(!@bad, $name) or diag(@bad);
}

sub check_body {
    my ($name, $block, $res) = @_;

    if (defined(my $want = $block->response_body)) {
        check_each("$name - response_body", $res, sub {
            my ($r, $n) = @_;
            my $w = subst_n($want, @$res > 1 ? $n : undef);
            return $r->{body} eq $w ? undef
                : "got:\n$r->{body}\nexpected:\n$w";
        });
    }
    if (defined(my $like = $block->response_body_like)) {
        chomp $like unless ref $like;
        my $re = ref $like ? $like : qr/$like/s;
        check_each("$name - response_body_like", $res, sub {
            my ($r) = @_;
            return $r->{body} =~ $re ? undef : "got:\n$r->{body}\nnot like $re";
        });
    }
    if (defined(my $json = $block->response_json)) {
        check_each("$name - response_json", $res, sub {
            my ($r, $n) = @_;
            my $w = subst_n($json, @$res > 1 ? $n : undef);
            my $want = eval { $JSON->decode($w) };
            return "response_json section is not JSON: $@" if $@;
            my $got = eval { $JSON->decode($r->{body}) };
            return "body is not JSON: $r->{body}" if $@;
            my ($g, $e) = ($JSON->encode($got), $JSON->encode($want));
            return $g eq $e ? undef : "got:\n$g\nexpected:\n$e";
        });
    }
}

sub check_headers {
    my ($name, $block, $res) = @_;

    for my $kind (qw(response_headers response_headers_like)) {
        my $text = $block->$kind;
        next unless defined $text;
        for my $line (grep { /\S/ } split /\n/, $text) {
            check_each("$name - $kind $line", $res, sub {
                my ($r) = @_;
                if ($line =~ /^!\s*(\S+)/) {
                    my $v = $r->{header}{ lc $1 };
                    return defined $v ? "present: $1: $v" : undef;
                }
                my ($k, $v) = $line =~ /^([^:\s]+):\s*(.*?)\s*$/
                    or return "bad line in $kind: $line";
                my $got = $r->{header}{ lc $k };
                return "absent: $k" unless defined $got;
                my $ok = $kind eq 'response_headers' ? $got eq $v : $got =~ /$v/;
                return $ok ? undef : "$k: $got";
            });
        }
    }
    if (defined(my $codes = $block->interim_codes)) {
        my $want = join ' ', $codes =~ /(\d{3})/g;
        check_each("$name - interim_codes", $res, sub {
            my $got = join ' ', @{ $_[0]{interim} };
            return $got eq $want ? undef : "got '$got', expected '$want'";
        });
    }
}

# The module's error body: {"status":N,"error":"<sentence>","field":F} where F
# names the field at fault or is null. --- error_field gives F ("null" for
# null), --- error_message_like a pattern for the sentence.
sub check_error_json {
    my ($name, $block, $res) = @_;

    my $field = $block->error_field;
    my $like = $block->error_message_like;
    return unless defined $field || defined $like;
    $field =~ s/^\s+|\s+$//g if defined $field;
    chomp $like if defined $like && !ref $like;
    my $re = defined $like ? (ref $like ? $like : qr/$like/i) : undef;

    check_each("$name - JSON error body", $res, sub {
        my ($r) = @_;
        my $ct = $r->{header}{'content-type'} // '';
        return "Content-Type is '$ct'" unless $ct =~ m{^application/json\b};
        my $e = eval { $JSON->decode($r->{body}) };
        return "body is not a JSON object: $r->{body}" unless ref $e eq 'HASH';
        return "status $e->{status} in the body, $r->{status} on the wire"
            unless defined $e->{status} && $e->{status} eq $r->{status};
        return "no error sentence: $r->{body}"
            unless defined $e->{error} && !ref $e->{error} && length $e->{error};
        return "no field member: $r->{body}" unless exists $e->{field};
        if (defined $field) {
            my $got = $e->{field} // 'null';
            return "field is $got, expected $field" unless $got eq $field;
        }
        if ($re) {
            return "error '$e->{error}' not like $re" unless $e->{error} =~ $re;
        }
        return undef;
    });
}

sub compare {
    my ($got, $op, $want) = @_;

    return $got == $want if $op eq '=' || $op eq '==';
    return $got < $want if $op eq '<';
    return $got <= $want if $op eq '<=';
    return $got > $want if $op eq '>';
    return $got >= $want if $op eq '>=';
    return $got != $want if $op eq '!=';
    die "unknown comparison $op\n";
}

# One line of --- store: USER then any of writes=N (or <, <=, >, >=, !=),
# history=ID,ID,... (the req_ids in order), like REGEX (rest of the line,
# matched against the JSON answer).
sub check_store_line {
    my ($line) = @_;

    my ($user, $rest) = $line =~ /^\s*(\S+)\s+(.*?)\s*$/
        or return "bad store line: $line";
    my $state = user_state($user);
    return $state unless ref $state;

    if ($rest =~ s/^like\s+//) {
        my $body = $JSON->encode($state);
        return $body =~ /$rest/ ? undef : "$user: $body\nnot like /$rest/";
    }
    for my $term (split /\s+/, $rest) {
        if ($term =~ /^writes(=|==|<|<=|>|>=|!=)(\d+)$/) {
            my ($op, $n) = ($1, $2);
            my $w = $state->{writes} // 'missing';
            return "$user: writes $w, expected $op $n"
                unless $w =~ /^\d+$/ && compare($w, $op, $n);
        }
        elsif ($term =~ /^history=(.*)$/) {
            my $want = $1;
            my $got = join ',', map { $_->{req_id} // '?' } @{ $state->{history} || [] };
            return "$user: history $got, expected $want" unless $got eq $want;
        }
        else {
            return "bad store term: $term";
        }
    }
    return undef;
}

sub check_store {
    my ($name, $block) = @_;

    my $text = $block->store;
    return unless defined $text;
    for my $line (grep { /\S/ } split /\n/, $text) {
        my $why = check_store_line($line);
        ok(!defined $why, "$name - store $line") or diag($why);
    }
}

# The SQLite file the running config writes to, if it is SQLite.
sub store_file {
    my ($conf) = @_;

    my ($file) = ($conf // '') =~ /^\s*RaceQStore\s+sqlite3\s+"?([^"\s]+)/mi;
    return $file;
}

# A dump of the whole SQLite store, read as the user httpd's children run
# as, so that SQLite never leaves root-owned side files next to the db.
sub store_dump {
    my ($file) = @_;

    return 'absent' unless defined $file && -e $file;
    my $pid = open my $fh, '-|';
    die "fork: $!\n" unless defined $pid;
    if (!$pid) {
        open STDERR, '>&', \*STDOUT;
        if ($> == 0) {
            my (undef, undef, $uid, $gid) = getpwnam('www-data');
            POSIX::setgid($gid);
            POSIX::setuid($uid);
        }
        { exec 'sqlite3', '-readonly', $file, '.dump' }
        POSIX::_exit(127);
    }
    local $/;
    my $dump = <$fh> // '';
    close $fh or die "sqlite3 -readonly $file .dump failed: $dump\n";
    return $dump;
}

sub involved_users {
    my ($block) = @_;

    my @users = split ' ', $block->store_unchanged // '';
    my $req = $block->request;
    if (defined $req && !ref $req) {
        my (undef, $body) = split /\n/, $req, 2;
        my $obj = eval { JSON::PP->new->utf8->decode($body // '') };
        my $u = ref $obj eq 'HASH' ? $obj->{user_id} : undef;
        push @users, $u if defined $u && !ref $u && $u =~ /^[A-Za-z0-9_-]{1,128}$/;
    }
    return @users;
}

sub store_snapshot {
    my ($block) = @_;

    # Users first: a store may create its schema on the first request.
    my %snap;
    for my $u (involved_users($block)) {
        my $s = user_state($u);
        $snap{"user $u"} = ref $s ? $JSON->encode($s) : $s;
    }
    $snap{dump} = store_dump(store_file($RunningConf));
    return \%snap;
}

sub check_unchanged {
    my ($name, $before, $block) = @_;

    return unless $before;
    my $after = store_snapshot($block);
    my @failed = grep { /^GET users/ } values %$before, values %$after;
    if (@failed) {
        ok(0, "$name - store unchanged") or diag(join "\n", @failed);
        return;
    }
    my @diff = grep { $before->{$_} ne ($after->{$_} // '') } sort keys %$before;
    ok(!@diff, "$name - store unchanged")
        or diag(map { "$_ before:\n$before->{$_}\nafter:\n$after->{$_}\n" } @diff);
}

# Waits (bounded) for the expected lines, then checks the rest of the log.
sub check_log {
    my ($name, $block, $offset, $extra) = @_;

    my @want = lines_or_patterns($block->error_log);
    my $timeout = $block->timeout || 10;
    my $until = time + $timeout;
    my $log;
    while (1) {
        $log = $extra . read_log_from($offset);
        my @missing = grep { !matches($log, $_) } @want;
        last if !@missing || time >= $until;
        sleep 0.05;
    }
    for my $pat (@want) {
        ok(matches($log, $pat), "$name - error_log has " . (ref $pat ? "$pat" : "'$pat'"));
    }
    for my $pat (lines_or_patterns($block->no_error_log)) {
        my @hits = grep { matches($_, $pat) } split /\n/, $log;
        ok(!@hits, "$name - error_log lacks " . (ref $pat ? "$pat" : "'$pat'"))
            or diag(@hits);
    }
    my @unexpected = grep {
        my $line = $_;
        !grep { matches($line, $_) } @want;
    } bad_lines($log);
    ok(!@unexpected, "$name - no unexpected error_log lines")
        or diag(join "\n", @unexpected);
    return $log;
}

# ---------------------------------------------------------------------------
# Running the blocks.

sub send_requests {
    my ($block) = @_;

    my $timeout = $block->timeout || 10;
    my ($conc) = ($block->concurrent // '') =~ /(\d+)/;
    my ($rep) = ($block->repeat // '') =~ /(\d+)/;

    if ($conc) {
        my @specs = map { request_spec($block, $_) } 1 .. $conc;
        return [Test::RaceQ::HTTP::exchange(
            port => $Port, timeout => $timeout, requests => \@specs)];
    }
    my @res;
    for my $n (1 .. ($rep || 1)) {
        push @res, Test::RaceQ::HTTP::exchange(
            port => $Port, timeout => $timeout,
            requests => [request_spec($block, $rep ? $n : undef)]);
    }
    return \@res;
}

sub check_sections {
    my ($name, $block) = @_;

    my @unknown = grep {
        !$SECTIONS{$_} && !$ExtraSections{$_}
    } @{ $block->_section_order };
    return 1 unless @unknown;
    ok(0, "$name - known sections") or diag("unknown sections: @unknown");
    return 0;
}

sub run_must_die {
    my ($name, $block, $conf, $offset) = @_;

    stop_httpd();
    start_services();
    my $err_at = -s "$Tmp/stderr" || 0;
    my $why = start_httpd($conf);
    ok($why ne '', "$name - httpd refuses to start");
    my $extra = read_log_from($err_at, "$Tmp/stderr");
    check_log($name, $block, $offset, $extra);
}

sub run_block {
    my ($block) = @_;

    my $name = sprintf 'TEST %d: %s', $block->seq_num, $block->name;
    $_->($block) for @Preprocessors;
    return unless check_sections($name, $block);

    my $offset = log_size();
    my $conf = httpd_conf($block);
    my $start_fails = Test::More->builder->current_test;

    if (defined $block->must_die) {
        run_must_die($name, $block, $conf, $offset);
        return;
    }

    my $err = ensure_httpd($conf);
    if ($err) {
        ok(0, "$name - httpd started") or diag($err);
        return;
    }

    my $before = defined $block->store_unchanged ? store_snapshot($block) : undef;
    my $res = send_requests($block);
    for my $i (0 .. $#$res) {
        diag("$name - request " . ($i + 1) . ": $res->[$i]{error}")
            if $res->[$i]{error} && !$res->[$i]{status};
    }

    check_status($name, $block, $res);
    check_body($name, $block, $res);
    check_headers($name, $block, $res);
    check_error_json($name, $block, $res);
    check_store($name, $block);
    check_unchanged($name, $before, $block);
    my $log = check_log($name, $block, $offset, '');
    $_->($block, $res, $log) for @BlockChecks;

    my @details = grep { !$_->{ok} }
        (Test::More->builder->details)[$start_fails .. Test::More->builder->current_test - 1];
    diag("$name - error_log of this block:\n$log") if @details;
}

sub run_tests {
    init();
    Test::More->builder->plan('no_plan') unless Test::More->builder->has_plan;
    start_services();
    for my $block (blocks()) {
        next if eval { run_block($block); 1 };
        ok(0, sprintf('TEST %d: %s - ran', $block->seq_num, $block->name)) or diag($@);
    }
    cleanup();
}

1;
