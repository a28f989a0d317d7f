# Where a write's id comes from: the body's req_id, an Idempotency-Key
# header, or (RaceQGenerateId On) a UUID made by the module. The id used is
# echoed in X-RaceQ-Req-Id and is the req_id the store records.

use Test::RaceQ;

add_block_preprocessor(sub {
    my ($block) = @_;

    $block->set_value(config => "RaceQApplyDelay 0 0\n") unless defined $block->config;
});

run_tests();

__DATA__

=== the header gives the id when the body has none
--- request
POST /t
{"user_id":"alice","n":1}
--- more_headers
Idempotency-Key: key-1
--- error_code: 200
--- response_body chomp
{"req_id":"key-1","user_id":"alice","n":1}
--- response_headers
X-RaceQ-Req-Id: key-1
--- error_log
writing-key-1___alice
--- store
alice writes=1 history=key-1

=== the header and the body may name the same id
--- request
POST /t
{"req_id":"key-2","user_id":"alice"}
--- more_headers
Idempotency-Key: key-2
--- error_code: 200
--- response_body chomp
{"req_id":"key-2","user_id":"alice"}
--- response_headers
X-RaceQ-Req-Id: key-2
--- store
alice writes=2 history=key-1,key-2

=== the body's id is echoed in the header too
--- request
POST /t
{"req_id":"body-1","user_id":"alice"}
--- error_code: 200
--- response_headers
X-RaceQ-Req-Id: body-1
--- store
alice writes=3 history=key-1,key-2,body-1

=== a header that differs from the body is refused
--- request
POST /t
{"req_id":"body-2","user_id":"bob"}
--- more_headers
Idempotency-Key: key-3
--- error_code: 400
--- error_field: req_id
--- error_message_like: differs from the Idempotency-Key header
--- response_headers
!X-RaceQ-Req-Id
--- store_unchanged: bob

=== a header with a space is refused, naming req_id
--- request
POST /t
{"user_id":"bob"}
--- more_headers
Idempotency-Key: a b
--- error_code: 400
--- error_field: req_id
--- error_message_like: Idempotency-Key header is not a valid req_id: .*no spaces
--- store_unchanged: bob

=== an invalid header is refused even when the body's req_id is valid
--- request
POST /t
{"req_id":"a b","user_id":"bob"}
--- more_headers
Idempotency-Key: a b
--- error_code: 400
--- error_field: req_id
--- error_message_like: Idempotency-Key
--- store_unchanged: bob

=== an empty header is refused
--- request
POST /t
{"user_id":"bob"}
--- more_headers
Idempotency-Key:
--- error_code: 400
--- error_field: req_id
--- error_message_like: must not be empty
--- store_unchanged: bob

=== a header of 129 characters is refused
--- request
POST /t
{"user_id":"bob"}
--- more_headers eval
"Idempotency-Key: " . ("k" x 129)
--- error_code: 400
--- error_field: req_id
--- error_message_like: at most 128 characters
--- store_unchanged: bob

=== a header of 128 characters is accepted
--- request
POST /t
{"user_id":"carol"}
--- more_headers eval
"Idempotency-Key: " . ("k" x 128)
--- error_code: 200
--- response_headers eval
"X-RaceQ-Req-Id: " . ("k" x 128)
--- store
carol writes=1

=== two Idempotency-Key headers are refused (httpd joins them with ", ")
--- request
POST /t
{"user_id":"bob"}
--- more_headers
Idempotency-Key: key-4
Idempotency-Key: key-4
--- error_code: 400
--- error_field: req_id
--- error_message_like: Idempotency-Key
--- store_unchanged: bob

=== the header's id is applied once: a repeat is 409 and still echoed
--- request
POST /t
{"user_id":"alice"}
--- more_headers
Idempotency-Key: key-1
--- error_code: 409
--- error_field: req_id
--- response_headers
X-RaceQ-Req-Id: key-1
--- store
alice writes=3 history=key-1,key-2,body-1

=== without RaceQGenerateId a missing id is refused
--- request
POST /t
{"user_id":"bob"}
--- error_code: 400
--- error_field: req_id
--- error_message_like: req_id is missing
--- response_headers
!X-RaceQ-Req-Id
--- store_unchanged: bob

=== RaceQGenerateId Off is the same
--- config
RaceQApplyDelay 0 0
RaceQGenerateId Off
--- request
POST /t
{"user_id":"bob"}
--- error_code: 400
--- error_field: req_id
--- error_message_like: req_id is missing
--- store_unchanged: bob

=== RaceQGenerateId On makes a UUID, echoed in the body and the header
--- config
RaceQApplyDelay 0 0
RaceQGenerateId On
--- request
POST /t
{"user_id":"dave","x":[1,2]}
--- error_code: 200
--- response_body_like chomp
^\{"req_id":"[0-9a-f]{8}(?:-[0-9a-f]{4}){3}-[0-9a-f]{12}","user_id":"dave","x":\[1,2\]\}$
--- response_headers_like
X-RaceQ-Req-Id: ^[0-9a-f]{8}(?:-[0-9a-f]{4}){3}-[0-9a-f]{12}$
--- error_log eval
qr/writing-[0-9a-f]{8}-[0-9a-f-]{27}___dave/
--- store
dave writes=1
dave like "req_id":"[0-9a-f]{8}-[0-9a-f-]{27}","seq":null

=== RaceQGenerateId On: every request gets its own id (a repeated one would be 409)
--- config
RaceQApplyDelay 0 0
RaceQGenerateId On
--- request
POST /t
{"user_id":"erin"}
--- concurrent: 8
--- error_code: 200
--- response_headers_like
X-RaceQ-Req-Id: ^[0-9a-f-]{36}$
--- store
erin like ^\{"history":\[(?:[^\]]*"req_id":"[0-9a-f-]{36}"){8}[^\]]*\]

=== RaceQGenerateId On keeps the body's id
--- config
RaceQApplyDelay 0 0
RaceQGenerateId On
--- request
POST /t
{"req_id":"body-3","user_id":"dave"}
--- error_code: 200
--- response_headers
X-RaceQ-Req-Id: body-3
--- store
dave writes=2

=== RaceQGenerateId On prefers the header
--- config
RaceQApplyDelay 0 0
RaceQGenerateId On
--- request
POST /t
{"user_id":"dave"}
--- more_headers
Idempotency-Key: key-5
--- error_code: 200
--- response_body chomp
{"req_id":"key-5","user_id":"dave"}
--- store
dave writes=3

=== RaceQGenerateId On still checks user_id
--- config
RaceQApplyDelay 0 0
RaceQGenerateId On
--- request
POST /t
{"user":"dave"}
--- error_code: 400
--- error_field: user_id
--- store_unchanged: dave

=== RaceQGenerateId is inherited from the server config
--- main_config
RaceQGenerateId On
--- request
POST /t
{"user_id":"frank"}
--- error_code: 200
--- response_headers_like
X-RaceQ-Req-Id: ^[0-9a-f-]{36}$
--- store
frank writes=1

=== a location may turn RaceQGenerateId Off again
--- main_config
RaceQGenerateId On
--- config
RaceQApplyDelay 0 0
RaceQGenerateId Off
--- request
POST /t
{"user_id":"frank"}
--- error_code: 400
--- error_field: req_id
--- store_unchanged: frank

=== RaceQGenerateId takes On or Off only
--- config
RaceQGenerateId yes
--- must_die
--- error_log
RaceQGenerateId must be On or Off
