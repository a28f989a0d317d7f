# Race mode end to end: the toy endpoint echoes the request object, applies a
# real read-modify-write on the SQLite store, and loses updates when requests
# for one user overlap.

use Test::RaceQ;

run_tests();

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
