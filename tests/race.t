# Race mode end to end: the toy endpoint echoes the request object, applies a
# real read-modify-write on the SQLite store, and loses updates when requests
# for one user overlap.

use IO::Socket::INET;
use IO::Select;
use Test::More;
use Test::RaceQ;

add_block_check(\&check_keepalive, 'keepalive');

run_tests();

# "--- keepalive": requests ("METHOD /path", optionally " BODY" after the path),
# one a line, sent one after another on a single connection; each must be
# answered 200 without closing it.
sub check_keepalive {
    my ($block) = @_;

    return unless defined $block->keepalive;
    my $name = sprintf 'TEST %d: %s - keepalive', $block->seq_num, $block->name;
    my $port = Test::RaceQ::server_port();
    my $sock = IO::Socket::INET->new(PeerAddr => '127.0.0.1', PeerPort => $port, Timeout => 5)
        or return fail("$name: connect: $!");
    my @reqs = grep { length } split /\n/, $block->keepalive;
    for my $i (0 .. $#reqs) {
        my ($method, $path, $body) = split / /, $reqs[$i], 3;
        $body //= '';
        my $head = "$method $path HTTP/1.1\r\nHost: 127.0.0.1:$port\r\n";
        $head .= "Content-Type: application/json\r\nContent-Length: " . length($body)
            . "\r\n" if length $body;
        print {$sock} "$head\r\n$body";
        my ($status, $headers, $err) = read_answer($sock);
        my $n = $i + 1;
        is($status, 200, "$name: answer $n of " . @reqs . " is 200")
            or return diag($err // '');
        unlike($headers, qr/^Connection:\s*close/mi, "$name: answer $n keeps the connection")
            or return;
    }
    close $sock;
}

# Reads one answer with a Content-Length body; returns (status, head, error).
sub read_answer {
    my ($sock) = @_;

    my $buf = '';
    my $sel = IO::Select->new($sock);
    while (1) {
        if ($buf =~ /\A(HTTP\/1\.1 (\d+)[^\r]*\r\n(.*?)\r\n)\r\n/s) {
            my ($head, $status) = ($1, $2);
            my ($len) = $head =~ /^Content-Length:\s*(\d+)/mi;
            return ($status, $head) if length($buf) >= length($head) + 2 + ($len // 0);
        }
        return (0, '', 'no answer within 10s') unless $sel->can_read(10);
        my $n = sysread $sock, $buf, 65536, length $buf;
        return (0, '', 'the connection was closed' . (length $buf ? ": $buf" : ''))
            unless $n;
    }
}

__DATA__

=== POST echoes the request object
--- config
RaceQApplyDelay 0 0
--- request
POST /t
{"req_id":"echo-1","user_id":"alice","amount":3,"note":"caf\u00e9","nested":{"a":[1,2]}}
--- error_code: 200
--- response_headers_like
Content-Type: ^application/json
--- response_json
{"req_id":"echo-1","user_id":"alice","amount":3,"note":"caf\u00e9","nested":{"a":[1,2]}}
--- error_log
finding-echo-1___alice
writing-echo-1___alice

=== the write is in the user's state
--- config
RaceQApplyDelay 0 0
--- request
GET /t/users/alice
--- error_code: 200
--- response_headers_like
Content-Type: ^application/json
--- response_body_like
^\{.*"user_id":\s*"alice".*\}$
--- store
alice writes=1 history=echo-1
alice like "seq":null
alice like "start":\d+,"finish":\d+|"finish":\d+,.*"start":\d+

=== an unknown user has no writes
--- config
RaceQApplyDelay 0 0
--- request
GET /t/users/nobody-yet
--- error_code: 200
--- response_body_like
"writes":\s*0\b
--- store
nobody-yet writes=0 history=

=== a charset parameter on the JSON content type is accepted
--- config
RaceQApplyDelay 0 0
--- request
POST /t
{"req_id":"charset-1","user_id":"alice"}
--- more_headers
Content-Type: application/json; charset=utf-8
--- error_code: 200
--- response_json
{"req_id":"charset-1","user_id":"alice"}
--- store
alice writes=2 history=echo-1,charset-1

=== a chunked body
--- config
RaceQApplyDelay 0 0
--- request
POST /t
{"req_id":"chunked-1","user_id":"bob","padding":"0123456789012345678901234567890123456789"}
--- chunked: 7
--- error_code: 200
--- response_json
{"req_id":"chunked-1","user_id":"bob","padding":"0123456789012345678901234567890123456789"}
--- error_log
writing-chunked-1___bob
--- store
bob writes=1 history=chunked-1

=== a body in chunks given one by one
--- config
RaceQApplyDelay 0 0
--- request eval
["POST /t", '{"req_id":', '"chunked-2",', '"user_id":"bob"', '}']
--- error_code: 200
--- response_json
{"req_id":"chunked-2","user_id":"bob"}
--- store
bob writes=2 history=chunked-1,chunked-2

=== Expect: 100-continue gets 100 Continue, then the answer
--- config
RaceQApplyDelay 0 0
--- request
POST /t
{"req_id":"continue-1","user_id":"carol"}
--- more_headers
Expect: 100-continue
--- interim_codes: 100
--- error_code: 200
--- response_json
{"req_id":"continue-1","user_id":"carol"}
--- store
carol writes=1 history=continue-1

=== without overlap every write counts
--- config
RaceQApplyDelay 0 0
--- request
POST /t
{"req_id":"seq-%%N%%","user_id":"steady"}
--- repeat: 5
--- error_code: 200
--- response_json
{"req_id":"seq-%%N%%","user_id":"steady"}
--- store
steady writes=5 history=seq-1,seq-2,seq-3,seq-4,seq-5

=== finding and writing are not logged below info
--- config
RaceQApplyDelay 0 0
--- log_level: warn raceq:warn
--- request
POST /t
{"req_id":"quiet-1","user_id":"quiet"}
--- error_code: 200
--- no_error_log
finding-
writing-
--- store
quiet writes=1 history=quiet-1

=== five overlapping writes for one user lose updates
--- config
RaceQApplyDelay 50 150
--- request
POST /t
{"req_id":"race-%%N%%","user_id":"racer"}
--- concurrent: 5
--- timeout: 20
--- error_code: 200
--- response_json
{"req_id":"race-%%N%%","user_id":"racer"}
--- error_log
finding-race-1___racer
finding-race-5___racer
writing-race-3___racer
--- store
racer writes<5
racer writes>=1

=== a body of known length gets a buffer of its size, not RaceQMaxBody
--- log_level: warn raceq:trace1
--- config
RaceQApplyDelay 0 0
RaceQMaxBody 1048576
--- request
POST /t
{"req_id":"buf-1","user_id":"buffer"}
--- error_code: 200
--- error_log
RQ11100: request body of 37 bytes read into a buffer of 38 bytes

=== a chunked body gets a buffer that grows with it
--- log_level: warn raceq:trace1
--- config
RaceQApplyDelay 0 0
RaceQMaxBody 1048576
--- request eval
"POST /t\n" . '{"req_id":"buf-2","user_id":"buffer","pad":"' . ('p' x 3000) . '"}'
--- chunked: 500
--- error_code: 200
--- error_log
RQ11100: request body of 3046 bytes read into a buffer of 4096 bytes

=== a chunked body over the limit is still refused
--- log_level: warn raceq:trace1
--- config
RaceQApplyDelay 0 0
RaceQMaxBody 2000
--- request eval
"POST /t\n" . '{"req_id":"buf-3","user_id":"buffer","pad":"' . ('p' x 3000) . '"}'
--- chunked: 500
--- error_code: 413
--- store
buffer writes=2 history=buf-1,buf-2

=== GETs keep the connection open, also with a body sent along
--- main_config
KeepAlive On
--- config
RaceQApplyDelay 0 0
--- request
GET /t/users/nobody-yet
--- error_code: 200
--- keepalive
GET /t/users/alice
GET /t/users/nobody-yet
GET /t/users/alice {"ignored":true}
POST /t {"req_id":"keepalive-1","user_id":"carol"}
GET /t/users/carol
GET /t/users/alice
