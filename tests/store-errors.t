# A store that fails: the answer says whether a read or a write failed, and
# each failed request logs one error line, with the database's own reason and
# no status code httpd cannot explain.

use Test::More;
use Test::RaceQ;

# "--- error_lines: N": the block's error_log has exactly N lines at error or worse.
add_block_check(sub {
    my ($block, $responses, $log) = @_;

    return unless defined $block->error_lines;
    my $name = sprintf 'TEST %d: %s', $block->seq_num, $block->name;
    my @errors = grep { /\[[\w:]*(?:error|crit|alert|emerg)\]/ } split /\n/, $log;
    is(scalar @errors, $block->error_lines, "$name - error lines: " . $block->error_lines)
        or diag(join "\n", @errors);
}, 'error_lines');

# Every block uses a database path that is a directory: it cannot be opened.
add_block_preprocessor(sub {
    my ($block) = @_;
    $block->set_value(config => "RaceQStore sqlite3 \$TEST_RACEQ_TMP/htdocs\n"
        . "RaceQApplyDelay 0 0\n") unless defined $block->config;
});

run_tests();

__DATA__

=== a failed write says so, and logs one error with the cause
--- request
POST /t
{"req_id":"w1","user_id":"u1"}
--- error_code: 500
--- error_field: null
--- error_message_like: ^the write could not be completed
--- error_log eval
qr/\[raceq:error\].*RQ02002: cannot open the store sqlite3 \S+\/htdocs: .*unable to open/
--- no_error_log
APR does not understand
RQ11003
--- error_lines: 1

=== a failed read says the read failed, and logs one error
--- request
GET /t/users/u1
--- error_code: 500
--- error_field: null
--- error_message_like: ^the user's state could not be read
--- error_log eval
qr/\[raceq:error\].*RQ02002: cannot open the store sqlite3 /
--- no_error_log
APR does not understand
--- error_lines: 1

=== at debug level the request's own line has the library's text, not a number
--- log_level: warn raceq:debug
--- request
GET /t/users/u1
--- error_code: 500
--- error_log eval
[qr/\[raceq:error\].*RQ02002: cannot open the store/,
 qr/\[raceq:debug\].*RQ11003: the user cannot be read \(store sqlite3 \S+\): /]
--- no_error_log
APR does not understand
--- error_lines: 1
