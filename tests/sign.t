# raceq-sign: every AWS SigV4 vector through the program (creq, sts, authz
# compared with the golden files in tests/sigv4), then its usage errors, and
# the secret key never printed whatever happens.
use strict;
use warnings;

use File::Find;
use File::Temp qw(tempdir);
use FindBin;
use IPC::Open3;
use Symbol qw(gensym);
use Test::More;

my $top   = "$FindBin::Bin/..";
my $sign  = "$top/bin/raceq-sign";
my $suite = "$top/tests/sigv4";
my $AK    = 'AKIDEXAMPLE';
my $SK    = 'wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY';
my $TIME  = '20150830T123600Z';
my $VANILLA_TOKEN =
  '6e86291e8372ff2a2260956d9b8aae1d763fbf315fa00fa31553b73ebf194267';
my @BASE = ('--access-key', $AK, '--secret-key', $SK, '--region', 'us-east-1',
            '--service', 'service', '--time', $TIME);

# A Node.js installed by scripts/deps.sh into tests/.node comes first.
$ENV{PATH} = "$top/tests/.node/node_modules/.bin:$ENV{PATH}"
    if -x "$top/tests/.node/node_modules/.bin/node";

die "$sign is not built (run make)\n" unless -x $sign;

my $tmp = tempdir(CLEANUP => 1);
my $everything_printed = '';

sub slurp {
    my ($path) = @_;
    open my $fh, '<:raw', $path or die "$path: $!";
    local $/;
    return scalar <$fh>;
}

sub spew {
    my ($name, $data) = @_;
    my $path = "$tmp/$name";
    open my $fh, '>:raw', $path or die "$path: $!";
    print {$fh} $data;
    close $fh;
    return $path;
}

# Runs raceq-sign; returns (exit status, stdout, stderr).
sub run_sign {
    my ($stdin, @args) = @_;
    my $err = gensym;
    my $pid = open3(my $in, my $out, $err, $sign, @args);
    binmode $_ for $in, $out, $err;
    print {$in} $stdin if defined $stdin;
    close $in;
    my $stdout = do { local $/; <$out> } // '';
    my $stderr = do { local $/; <$err> } // '';
    waitpid $pid, 0;
    $everything_printed .= $stdout . $stderr;
    return ($? >> 8, $stdout, $stderr);
}

sub vectors {
    my @found;
    find(sub {
        return unless /\.req\z/;
        (my $stem = $File::Find::name) =~ s/\.req\z//;
        push @found, $stem;
    }, $suite);
    return sort @found;
}

sub token_args {
    my ($stem) = @_;
    return $stem =~ m{/get-vanilla-with-session-token\z}
      ? ('--session-token', $VANILLA_TOKEN) : ();
}

# ---- every vector, stage by stage -------------------------------------------

my @vectors = vectors();
is(scalar @vectors, 28, 'all 28 vectors found');

for my $stem (@vectors) {
    (my $name = $stem) =~ s{^\Q$suite\E/}{};
    for my $stage (qw(creq sts authz)) {
        my ($rc, $out, $err) =
          run_sign(undef, @BASE, token_args($stem), '--print', $stage, "$stem.req");
        is($rc, 0, "$name $stage: exit 0") or diag $err;
        is($out, slurp("$stem.$stage") . "\n", "$name $stage: matches the golden file");
    }
}

{
    my $stem = "$suite/get-vanilla/get-vanilla";
    my ($rc, $out) = run_sign(undef, @BASE, '--print', 'all', "$stem.req");
    my $want = "== canonical request ==\n" . slurp("$stem.creq") . "\n\n"
      . "== string to sign ==\n" . slurp("$stem.sts") . "\n\n"
      . "== authorization ==\n" . slurp("$stem.authz") . "\n";
    is($out, $want, '--print all shows the three stages under headings');

    ($rc, $out) = run_sign(undef, @BASE, "$stem.req");
    is($out, $want, 'all is the default');

    ($rc, $out) = run_sign(slurp("$stem.req"), @BASE, '--print', 'authz', '-');
    is($out, slurp("$stem.authz") . "\n", "'-' reads the request from standard input");

    (my $no_date = slurp("$stem.req")) =~ s/\nX-Amz-Date:[^\n]*//;
    ($rc, $out) = run_sign(undef, @BASE, '--print', 'authz', spew('nodate.req', $no_date));
    is($out, slurp("$stem.authz") . "\n", 'a missing X-Amz-Date is taken from --time');

    ($rc, $out) = run_sign(undef, @BASE, '--verbose', '--print', 'authz', "$stem.req");
    is($rc, 0, '--verbose signs too');
}

{
    my $stem = "$suite/get-vanilla-with-session-token/get-vanilla-with-session-token";
    my $with = slurp("$suite/get-vanilla/get-vanilla.req")
      . "\nX-Amz-Security-Token:$VANILLA_TOKEN";
    my $path = spew('token.req', $with);
    my ($rc, $out) = run_sign(undef, @BASE, '--print', 'authz', $path);
    is($out, slurp("$stem.authz") . "\n", 'a token header already in the request is signed');

    ($rc, $out) = run_sign(undef, @BASE, '--session-token', $VANILLA_TOKEN,
                           '--print', 'authz', $path);
    is($out, slurp("$stem.authz") . "\n", 'the same token given twice is fine');

    my $err;
    ($rc, $out, $err) = run_sign(undef, @BASE, '--session-token', 'OTHERtoken',
                                 '--print', 'authz', $path);
    is($rc, 1, 'a token that differs from the header: exit 1');
    like($err, qr/X-Amz-Security-Token differs from --session-token/, '... says why');
    unlike($err, qr/OTHERtoken|\Q$VANILLA_TOKEN\E/, '... without printing either token');
}

# ---- usage errors (exit 2) ----------------------------------------------------

my $vanilla = "$suite/get-vanilla/get-vanilla.req";

{
    my ($rc, $out) = run_sign(undef, '--help');
    is($rc, 0, '--help: exit 0');
    like($out, qr/^Usage: raceq-sign --access-key/, '--help prints the usage');
    like($out, qr/Exit status: 0 signed, 1 .* 2 usage error/s, '--help documents exit codes');
}

my %required = ('--access-key' => 0, '--secret-key' => 2, '--region' => 4,
                '--service' => 6, '--time' => 8);
for my $opt (sort keys %required) {
    my @args = @BASE;
    splice @args, $required{$opt}, 2;
    my ($rc, $out, $err) = run_sign(undef, @args, $vanilla);
    is($rc, 2, "missing $opt: exit 2");
    like($err, qr/missing option \Q$opt\E/, "missing $opt: named");
    is($out, '', "missing $opt: nothing on stdout");
}

for my $bad ('2015-08-30T12:36:00Z', '20151330T123600Z', '20150830T123600', 'now', '') {
    my @args = @BASE;
    $args[9] = $bad;
    my ($rc, $out, $err) = run_sign(undef, @args, $vanilla);
    is($rc, 2, "bad --time '$bad': exit 2");
    like($err, qr/--time must be a UTC time YYYYMMDDTHHMMSSZ/, "bad --time '$bad': explained");
}

{
    my ($rc, $out, $err) = run_sign(undef, @BASE, '--print', 'sig', $vanilla);
    is($rc, 2, 'bad --print: exit 2');
    like($err, qr/--print must be one of creq, sts, authz, all/, 'bad --print: explained');

    ($rc, $out, $err) = run_sign(undef, @BASE, '--secret-kye=typoSECRET', $vanilla);
    is($rc, 2, 'unknown option: exit 2');
    like($err, qr/invalid option/, 'unknown option: reported');
    unlike($err, qr/typoSECRET/, 'unknown option: its value is not echoed');

    ($rc, $out, $err) = run_sign(undef, @BASE);
    is($rc, 2, 'no FILE: exit 2');
    like($err, qr/exactly one FILE/, 'no FILE: explained');

    ($rc, $out, $err) = run_sign(undef, @BASE, $vanilla, $vanilla);
    is($rc, 2, 'two FILEs: exit 2');

    ($rc, $out, $err) = run_sign(undef, @BASE, '--secret-key', '', $vanilla);
    is($rc, 2, 'empty --secret-key: exit 2');
}

# ---- requests that cannot be read or signed (exit 1) -------------------------

my %bad_requests = (
    'no such file'       => ["$tmp/missing.req", qr/missing\.req: No such file/],
    'a directory'        => [$tmp, qr/\Q$tmp\E: /],
    'no HTTP version'    => [spew('nover.req', "GET /\nHost:h"),
                             qr/line 1: the request line must be METHOD TARGET/],
    'header w/o colon'   => [spew('nocolon.req', "GET / HTTP/1.1\nHost h"),
                             qr/line 2: a header line must be Name:value/],
    'no Host header'     => [spew('nohost.req', "GET / HTTP/1.1\nX-Amz-Date:$TIME"),
                             qr/the request has no Host header/],
    'other X-Amz-Date'   => [spew('date.req', "GET / HTTP/1.1\nHost:h\n"
                                  . "X-Amz-Date:20150830T123601Z"),
                             qr/X-Amz-Date 20150830T123601Z differs from --time $TIME/],
    'bad query escape'   => [spew('esc.req', "GET /?a=%zz HTTP/1.1\nHost:h"),
                             qr/esc\.req: the query of the request target has a malformed/],
    'short escape'       => [spew('esc2.req', "GET /p?b=1&c=%4 HTTP/1.1\nHost:h"),
                             qr/escape '%4' in 'c=%4'; '%' must be followed by two hex digits$/],
    'escape in a name'   => [spew('esc3.req', "GET /p?x%g1=2 HTTP/1.1\nHost:h"),
                             qr/malformed percent escape '%g1' in 'x%g1=2'/],
    'lone %'             => [spew('esc4.req', "GET /p?a=%&b=1 HTTP/1.1\nHost:h"),
                             qr/malformed percent escape '%' in 'a=%'/],
);
for my $case (sort keys %bad_requests) {
    my ($path, $why) = @{ $bad_requests{$case} };
    my ($rc, $out, $err) = run_sign(undef, @BASE, $path);
    is($rc, 1, "$case: exit 1");
    like($err, $why, "$case: explained");
    is($out, '', "$case: nothing on stdout");
}

# ---- interop: AWS's own SigV4 signer for JavaScript --------------------------
#
# The signer inside @aws-sdk/client-sqs (@smithy/signature-v4, installed in
# tests/node_modules) signs SQS-shaped requests; raceq-sign must agree.

my $SMITHY = <<'JS';
import { SignatureV4 } from '@smithy/signature-v4';
import { Sha256 } from '@aws-crypto/sha256-js';
const c = JSON.parse(process.env.RQ_CASE);
const signer = new SignatureV4({
    credentials: { accessKeyId: c.ak, secretAccessKey: c.sk, sessionToken: c.token },
    region: c.region, service: 'sqs', sha256: Sha256, applyChecksum: false });
const r = await signer.sign({ method: c.method, protocol: 'https:', hostname: c.host,
    path: c.path, query: c.query, headers: c.headers, body: c.body },
    { signingDate: new Date(c.date) });
process.stdout.write(r.headers.authorization);
JS

{
    my $have = -d "$top/tests/node_modules/\@smithy/signature-v4"
      && -d "$top/tests/node_modules/\@aws-crypto/sha256-js"
      && system('node --version >/dev/null 2>&1') == 0;
    die "node or the AWS SDK packages in tests/node_modules are missing (run make deps)\n"
      unless $have;

    require JSON::PP;
    my $body = '{"QueueUrl":"https://sqs.eu-west-1.amazonaws.com/123456789012/q.fifo",'
      . '"MessageBody":"{\"req_id\":\"r1\"}","MessageGroupId":"u1"}';
    my @cases = (
        ['SendMessage, no token', 'POST', '/', {}, undef, $body],
        ['SendMessage, session token', 'POST', '/', {}, 'IQoJb3JpZ2luX2VjEXAMPLE+/=', $body],
        ['query and queue path', 'GET', '/123456789012/q.fifo',
         { Action => 'GetQueueAttributes', 'AttributeName.1' => 'All',
           Version => '2012-11-05' }, undef, ''],
    );
    for my $case (@cases) {
        my ($name, $method, $path, $query, $token, $data) = @$case;
        my %headers = ('Host' => 'sqs.eu-west-1.amazonaws.com',
                       'X-Amz-Date' => '20240501T101500Z',
                       'Content-Type' => 'application/x-amz-json-1.0',
                       'X-Amz-Target' => 'AmazonSQS.SendMessage');
        my $qs = join '&', map { "$_=$query->{$_}" } sort keys %$query;
        my $req = "$method $path" . ($qs ? "?$qs" : '') . " HTTP/1.1\n"
          . join('', map { "$_:$headers{$_}\n" } sort keys %headers) . "\n" . $data;
        my @tok = defined $token ? ('--session-token', $token) : ();
        my ($rc, $ours) = run_sign(undef, '--access-key', $AK, '--secret-key', $SK,
            '--region', 'eu-west-1', '--service', 'sqs', '--time', '20240501T101500Z',
            @tok, '--print', 'authz', spew('interop.req', $req));
        is($rc, 0, "interop $name: raceq-sign signs");

        local $ENV{RQ_CASE} = JSON::PP->new->canonical->encode({
            ak => $AK, sk => $SK, token => $token, region => 'eu-west-1',
            method => $method, host => $headers{Host}, path => $path, query => $query,
            headers => \%headers, body => $data, date => '2024-05-01T10:15:00Z' });
        my $theirs = do {
            open my $js, '-|', 'sh', '-c',
              "cd '$top/tests' && node --input-type=module -e \"\$1\"", 'sh', $SMITHY
              or die "node: $!";
            local $/;
            <$js>;
        };
        is($ours, "$theirs\n", "interop $name: same Authorization as AWS's JS signer");
    }
}

# ---- the secret ---------------------------------------------------------------

ok(length $everything_printed > 0, 'outputs were collected');
ok(index($everything_printed, $SK) < 0, 'the secret key never appears in any output');

done_testing();
