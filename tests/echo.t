# SetHandler raceq-echo: the benchmarks' baseline reads the body within
# RaceQMaxBody and answers a fixed JSON object, writing nothing.

use Test::RaceQ;

add_block_preprocessor(sub {
    my ($block) = @_;

    $block->set_value(config => "SetHandler raceq-echo\nRaceQMaxBody 64\n")
        unless defined $block->config;
});

run_tests();

__DATA__

=== a POST is answered with a fixed object
--- request
POST /t
{"req_id":"e1","user_id":"alice"}
--- error_code: 200
--- response_body chomp
{"ok":true}
--- response_headers_like
Content-Type: ^application/json
--- no_error_log
writing-e1

=== a chunked body is read
--- request eval
["POST /t", '{"req_id":"e2",', '"user_id":"alice"}']
--- error_code: 200
--- response_body chomp
{"ok":true}

=== the body limit applies
--- request eval
"POST /t\n" . ('x' x 65)
--- error_code: 413
--- error_field: null

=== other methods are refused
--- request
GET /t
--- error_code: 405
--- response_headers_like
Allow: \bPOST\b
