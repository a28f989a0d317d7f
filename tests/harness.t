# Self-tests of Test::RaceQ: small test files are written to a temporary
# directory and run in a sub-process against a plain httpd (no mod_raceq),
# and their TAP output is checked. A harness that cannot fail proves nothing.

use strict;
use warnings;

use Cwd qw(abs_path);
use File::Basename qw(dirname);
use File::Temp qw(tempdir);
use Test::More;

my $lib = abs_path(dirname(__FILE__) . '/lib');
my $dir = tempdir('raceq-harness-XXXXXX', TMPDIR => 1, CLEANUP => 1);
my $n = 0;

# Runs a test file made of $code and $data, against a plain httpd unless
# $module; returns (exit status, output).
sub run_inner {
    my ($code, $data, $module) = @_;

    my $file = sprintf '%s/inner%d.t', $dir, ++$n;
    my $setup = $module ? '' : "no_module();\n";
    open my $fh, '>', $file or die "$file: $!";
    print $fh "use Test::RaceQ;\n$setup$code\nrun_tests();\n__DATA__\n$data";
    close $fh;
    my $out = `$^X -I$lib $file 2>&1`;
    return ($? >> 8, $out);
}

sub inner_ok {
    my ($out, $pattern, $name) = @_;

    like($out, qr/^ok \d+ - \Q$pattern\E/m, $name);
}

sub inner_not_ok {
    my ($out, $pattern, $name) = @_;

    like($out, qr/^not ok \d+ - \Q$pattern\E/m, $name);
}

my ($rc, $out) = run_inner('', <<'EOF');
=== plain request
--- request
GET /t/none
--- more_headers
X-Anything: yes
--- error_code: 404
--- response_headers
!X-Not-There
--- response_headers_like
Content-Type: ^text/html
--- response_body_like
Not Found
--- no_error_log
[error]
EOF
is($rc, 0, 'a passing file exits 0') or diag($out);
inner_ok($out, 'TEST 1: plain request - status 404', 'status check passes');
inner_ok($out, 'TEST 1: plain request - no unexpected error_log lines', 'clean log passes');

($rc, $out) = run_inner('', <<'EOF');
=== denied, undeclared
--- config
Require all denied
--- request
GET /t
--- error_code: 403

=== denied, declared
--- config
Require all denied
--- request
GET /t
--- error_code: 403
--- error_log
AH01630
EOF
isnt($rc, 0, 'an unexpected [error] line fails the file');
inner_not_ok($out, 'TEST 1: denied, undeclared - no unexpected error_log lines',
    'the undeclared error line fails its block');
like($out, qr/^#.*\[authz_core:error\].*AH01630/m, 'the offending line is shown');
inner_ok($out, 'TEST 2: denied, declared - no unexpected error_log lines',
    'a declared error line does not fail the next block');
inner_ok($out, "TEST 2: denied, declared - error_log has 'AH01630'", 'error_log finds it');

($rc, $out) = run_inner('', <<'EOF');
=== wrong status
--- request
GET /t
--- error_code: 200

=== wrong body
--- request
GET /t
--- response_body_like
^nothing like this$

=== a header that should be absent
--- request
GET /t
--- response_headers
!Content-Type

=== a missing log line
--- request
GET /t
--- timeout: 1
--- error_log
no such line

=== a forbidden log line
--- config
Require all denied
--- request
GET /t
--- error_log
AH01630
--- no_error_log
client denied

=== a typo in a section name
--- request
GET /t
--- eror_code: 404
EOF
isnt($rc, 0, 'failing checks fail the file');
inner_not_ok($out, 'TEST 1: wrong status - status 200', 'error_code can fail');
inner_not_ok($out, 'TEST 2: wrong body - response_body_like', 'response_body_like can fail');
inner_not_ok($out, 'TEST 3: a header that should be absent - response_headers !Content-Type',
    'an absent header can fail');
inner_not_ok($out, "TEST 4: a missing log line - error_log has 'no such line'",
    'error_log can fail');
inner_not_ok($out, "TEST 5: a forbidden log line - error_log lacks 'client denied'",
    'no_error_log can fail');
inner_not_ok($out, 'TEST 6: a typo in a section name - known sections',
    'an unknown section fails');

($rc, $out) = run_inner(<<'CODE', <<'EOF');
my @pids;
add_block_check(sub { push @pids, Test::RaceQ::httpd_pid() });
END { print "# pids @pids\n" }
CODE
=== first
--- config
Require all granted
--- request
GET /t
--- error_code: 404

=== same config
--- config
Require all granted
--- request
GET /t
--- error_code: 404

=== other config
--- config
Require all granted
ErrorDocument 404 "gone on port $TEST_RACEQ_PORT"
--- request
GET /t
--- error_code: 404
--- response_body_like
^gone on port \d+$
EOF
is($rc, 0, 'restart file passes') or diag($out);
my ($p1, $p2, $p3) = $out =~ /^# pids (\d+) (\d+) (\d+)$/m;
ok($p1 && $p1 == $p2, 'the same config keeps httpd running');
ok($p3 && $p3 != $p2, 'a different config restarts httpd');
ok($p3 && !kill(0, $p3), 'httpd is stopped after the file');

$ENV{RACEQ_SELFTEST_LOG} = "$dir/service.log";
($rc, $out) = run_inner(<<'CODE', <<'EOF');
my $log = $ENV{RACEQ_SELFTEST_LOG};
my $pid;
add_service(
    name  => 'recorder',
    start => sub {
        config_var(TEST_RACEQ_GREETING => 'hello-from-service');
        open my $fh, '>>', $log;
        print $fh "start httpd=" . (Test::RaceQ::httpd_pid() // 'none') . "\n";
    },
    stop  => sub {
        open my $fh, '>>', $log;
        print $fh "stop httpd=" . (Test::RaceQ::httpd_pid() // 'none') . " was=$pid\n";
    },
);
add_block_check(sub { $pid = Test::RaceQ::httpd_pid(); die "stopping here\n" });
CODE
=== a placeholder set by a service
--- config
ErrorDocument 404 "$TEST_RACEQ_GREETING"
--- request
GET /t
--- response_body: hello-from-service
EOF
isnt($rc, 0, 'a dying file fails');
my $svc_log = $ENV{RACEQ_SELFTEST_LOG};
my $svc = '';
if (open my $sfh, '<', $svc_log) {
    local $/;
    $svc = <$sfh>;
}
like($svc, qr/\Astart httpd=none\nstop httpd=none was=(\d+)\n\z/,
    'the service starts before httpd and stops after it, also when the file dies')
    or diag($out);
my ($was) = $svc =~ /was=(\d+)/;
ok($was && !kill(0, $was), 'httpd is stopped when the file dies');
inner_ok($out, 'TEST 1: a placeholder set by a service - response_body',
    'a placeholder set by a service is expanded');

($rc, $out) = run_inner(<<'CODE', <<'EOF');
add_block_check(sub {
    open my $fh, '<', Test::RaceQ::tmp_dir() . '/access_log';
    my @paths = sort map { m{"GET (/t/\d+) } ? $1 : () } <$fh>;
    print "# paths @paths\n";
});
CODE
=== concurrent requests with a template
--- request
GET /t/%%N%%
--- concurrent: 4
--- error_code: 404
EOF
is($rc, 0, 'concurrent file passes') or diag($out);
like($out, qr{^# paths /t/1 /t/2 /t/3 /t/4$}m, 'each copy gets its own number');

($rc, $out) = run_inner('', <<'EOF');
=== a directive httpd does not know
--- config
NoSuchDirective on
--- must_die
--- error_log
NoSuchDirective

=== httpd that does not start fails the block
--- config
NoSuchDirective on
--- request
GET /t
EOF
inner_ok($out, 'TEST 1: a directive httpd does not know - httpd refuses to start',
    'must_die sees the refusal');
inner_ok($out, "TEST 1: a directive httpd does not know - error_log has 'NoSuchDirective'",
    'the start error is searchable');
inner_not_ok($out, 'TEST 2: httpd that does not start fails the block - httpd started',
    'a start failure fails the block');
like($out, qr/^#.*Invalid command 'NoSuchDirective'/m, 'the start error is printed');

# Which error_log lines fail a block by themselves.
require Test::RaceQ;
my @lines = (
    '[Thu Dec 03 13:06:43.5 2026] [raceq:error] [pid 1:tid 2] RQ11003: store failed',
    '[Thu Dec 03 13:06:43.5 2026] [crit] [pid 1:tid 2] no module tag',
    '[Thu Dec 03 13:06:43.5 2026] [core:emerg] [pid 1] AH00020: out of memory',
    '[Thu Dec 03 13:06:43.5 2026] [core:notice] [pid 1] AH00052: child pid 7 exit signal '
        . 'Segmentation fault (11)',
    '[Thu Dec 03 13:06:43.5 2026] [raceq:warn] [pid 1:tid 2] RQ11004: slow store',
    '[Thu Dec 03 13:06:43.5 2026] [raceq:info] [pid 1:tid 2] writing-error-1___u',
);
is_deeply([Test::RaceQ::bad_lines(join "\n", @lines)], [@lines[0 .. 3]],
    'errors, worse levels and crashed children are unexpected; warnings and info are not');

# The store checks need mod_raceq itself (built by make).
($rc, $out) = run_inner('', <<'EOF', 1);
=== a write the block says did not happen
--- config
RaceQApplyDelay 0 0
--- request
POST /t
{"req_id":"h-1","user_id":"someone"}
--- error_code: 200
--- store_unchanged: someone

=== a wrong count
--- config
RaceQApplyDelay 0 0
--- request
GET /t/users/someone
--- store
someone writes=2
someone history=h-2
someone writes<1

=== the right state
--- config
RaceQApplyDelay 0 0
--- request
GET /t/users/someone
--- store
someone writes=1 history=h-1
someone like "req_id":"h-1"
EOF
inner_ok($out, 'TEST 1: a write the block says did not happen - status 200', 'the write is made');
inner_not_ok($out, 'TEST 1: a write the block says did not happen - store unchanged',
    'store_unchanged sees a write');
inner_not_ok($out, 'TEST 2: a wrong count - store someone writes=2', 'a wrong count fails');
inner_not_ok($out, 'TEST 2: a wrong count - store someone history=h-2', 'a wrong history fails');
inner_not_ok($out, 'TEST 2: a wrong count - store someone writes<1', 'a comparison fails');
inner_ok($out, 'TEST 3: the right state - store someone writes=1 history=h-1',
    'the right state passes');
inner_ok($out, 'TEST 3: the right state - store someone like "req_id":"h-1"', 'like passes');

done_testing();
