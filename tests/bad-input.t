# Bad input on the toy endpoint: each request is refused with the right status
# and a JSON error naming the field at fault, and nothing reaches the store.
# The cases for req_id and user_id are generated below the fixed blocks, the
# same list for each field.

use Test::RaceQ;

my %other = (req_id => '"user_id":"victim"', user_id => '"req_id":"r-ok"');

# [title, JSON text of the value (undef: the member is absent), field the
#  error must name, pattern for the error sentence]
my @cases = (
    ['is missing', undef, 'F', 'F'],
    ['is a number', '12', 'F', 'F'],
    ['is null', 'null', 'F', 'F'],
    ['is an object', '{"id":"x"}', 'F', 'F'],
    ['is an array', '["x"]', 'F', 'F'],
    ['is a boolean', 'true', 'F', 'F'],
    ['is empty', '""', 'F', 'F'],
    ['has 129 characters', '"' . ('x' x 129) . '"', 'F', 'F'],
    ['has a space', '"a b"', 'F', 'F'],
    ['has a non-ASCII letter', qq{"caf\xc3\xa9"}, 'F', 'F'],
    ['has an escaped non-ASCII letter', '"caf\\u00e9"', 'F', 'F'],
    ['has a control character', '"a\\u0007b"', 'F', 'F'],
    ['is invalid UTF-8', qq{"a\xffb"}, 'F', 'UTF-8'],
    ['is an overlong UTF-8 sequence', qq{"a\xc0\xafb"}, 'F', 'UTF-8'],
    ['has an escaped NUL', '"a\\u0000b"', 'F', 'NUL'],
    ['has a raw NUL byte', qq{"a\0b"}, 'F', 'NUL'],
);

sub perl_string {
    my ($s) = @_;

    $s =~ s/([\\"\$\@])/\\$1/g;
    $s =~ s/([^\x20-\x7e])/sprintf('\\x%02x', ord $1)/ge;
    return qq{"$s"};
}

sub field_block {
    my ($field, $title, $value, $want, $like) = @_;

    my $body = '{' . (defined $value ? qq{"$field":$value,} : '') . $other{$field} . '}';
    s/^F$/$field/ for $want, $like;
    my $block = "=== $field $title\n--- request eval\n\"POST /t\\n\" . "
        . perl_string($body) . "\n--- error_code: 400\n--- error_field: $want\n";
    $block .= "--- error_message_like: $like\n" if length $like;
    return $block . "--- store_unchanged: victim\n\n";
}

my $spec = do { local $/; <DATA> };
for my $field (qw(req_id user_id)) {
    $spec .= field_block($field, @$_) for @cases;
    $spec .= "=== $field duplicated\n--- request\nPOST /t\n"
        . qq{{"$field":"a","$field":"b",$other{$field}}}
        . "\n--- error_code: 400\n--- error_field: $field\n"
        . "--- error_message_like: duplicate\n--- store_unchanged: victim a b\n\n";
}
spec_string($spec);

# One httpd for the whole file: every block without a config of its own
# gets the same small body limit.
add_block_preprocessor(sub {
    my ($block) = @_;
    $block->set_value(config => "RaceQMaxBody 1024\nRaceQApplyDelay 0 0\n")
        unless defined $block->config;
});

run_tests();

__DATA__

=== PUT is not allowed
--- request
PUT /t
{"req_id":"m1","user_id":"victim"}
--- error_code: 405
--- response_headers_like
Allow: \bPOST\b
--- error_field: null
--- store_unchanged: victim

=== DELETE is not allowed
--- request
DELETE /t
--- error_code: 405
--- response_headers_like
Allow: \bPOST\b
--- error_field: null
--- store_unchanged: victim

=== GET on the location itself is not allowed
--- request
GET /t
--- error_code: 405
--- response_headers_like
Allow: \bPOST\b
--- error_field: null
--- store_unchanged: victim

=== POST on a user's state is not allowed
--- request
POST /t/users/victim
{"req_id":"m2","user_id":"victim"}
--- error_code: 405
--- response_headers_like
Allow: \bGET\b
--- error_field: null
--- store_unchanged: victim

=== text/plain is refused
--- request
POST /t
{"req_id":"ct1","user_id":"victim"}
--- more_headers
Content-Type: text/plain
--- error_code: 415
--- error_field: null
--- store_unchanged: victim

=== a missing content type is refused
--- request
POST /t
{"req_id":"ct2","user_id":"victim"}
--- more_headers
!Content-Type
--- error_code: 415
--- error_field: null
--- store_unchanged: victim

=== a JSON look-alike content type is refused
--- request
POST /t
{"req_id":"ct3","user_id":"victim"}
--- more_headers
Content-Type: application/jsonp
--- error_code: 415
--- error_field: null
--- store_unchanged: victim

=== a body of exactly RaceQMaxBody bytes is accepted
--- request eval
my $head = '{"req_id":"max-1","user_id":"maxer","pad":"';
"POST /t\n" . $head . ('p' x (1024 - length($head) - 2)) . '"}'
--- error_code: 200
--- store
maxer writes=1 history=max-1

=== a body one byte over RaceQMaxBody is refused
--- request eval
my $head = '{"req_id":"max-2","user_id":"maxer","pad":"';
"POST /t\n" . $head . ('p' x (1025 - length($head) - 2)) . '"}'
--- error_code: 413
--- error_field: null
--- store_unchanged: maxer

=== a declared length over the limit is refused before the body is read
--- request
POST /t
{"req_id":"big-1","user_id":"victim","pad":"
--- more_headers
Content-Length: 100000000
--- error_code: 413
--- error_field: null
--- store_unchanged: victim

=== a declared length over the limit gets no 100 Continue
--- request
POST /t
{"req_id":"big-2","user_id":"victim"}
--- more_headers
Content-Length: 100000000
Expect: 100-continue
--- interim_codes: none
--- error_code: 413
--- error_field: null
--- store_unchanged: victim

=== a chunked body over the limit is refused
--- request eval
"POST /t\n" . '{"req_id":"big-3","user_id":"victim","pad":"' . ('p' x 4000) . '"}'
--- chunked: 500
--- error_code: 413
--- error_field: null
--- store_unchanged: victim

=== an empty body
--- request eval
"POST /t\n"
--- error_code: 400
--- error_field: null
--- store_unchanged: victim

=== malformed JSON
--- request
POST /t
{"req_id":"bad-1","user_id":"victim",
--- error_code: 400
--- error_field: null
--- error_message_like: JSON
--- store_unchanged: victim

=== trailing garbage after the object
--- request
POST /t
{"req_id":"bad-2","user_id":"victim"} x
--- error_code: 400
--- error_field: null
--- store_unchanged: victim

=== an array body
--- request
POST /t
[{"req_id":"bad-3","user_id":"victim"}]
--- error_code: 400
--- error_field: null
--- error_message_like: object
--- store_unchanged: victim

=== a string body
--- request
POST /t
"req_id"
--- error_code: 400
--- error_field: null
--- error_message_like: object
--- store_unchanged: victim

=== a number body
--- request
POST /t
42
--- error_code: 400
--- error_field: null
--- error_message_like: object
--- store_unchanged: victim

=== a null body
--- request
POST /t
null
--- error_code: 400
--- error_field: null
--- error_message_like: object
--- store_unchanged: victim

=== nesting 100 levels deep
--- request eval
"POST /t\n" . '{"req_id":"deep-1","user_id":"victim","x":' . ('[' x 100) . (']' x 100) . '}'
--- error_code: 400
--- error_field: null
--- error_message_like: nest|deep
--- store_unchanged: victim

=== invalid UTF-8 in another member
--- request eval
"POST /t\n" . qq{{"req_id":"utf-1","user_id":"victim","note":"\xfe\xff"}}
--- error_code: 400
--- error_field: null
--- error_message_like: UTF-8
--- store_unchanged: victim

=== an unknown sub-path
--- request
POST /t/other
{"req_id":"path-1","user_id":"victim"}
--- error_code: 404
--- error_field: null
--- store_unchanged: victim

=== an unknown sub-path on GET
--- request
GET /t/nothing/here
--- error_code: 404
--- error_field: null

=== GET users with a space in the id
--- request
GET /t/users/a%20b
--- error_code: 400
--- error_field: user_id

=== GET users with a 129-character id
--- request eval
"GET /t/users/" . ('u' x 129)
--- error_code: 400
--- error_field: user_id

=== user_id '.' is refused (it could not be read back)
--- request
POST /t
{"req_id":"dot-1","user_id":"."}
--- error_code: 400
--- error_field: user_id
--- error_message_like: ^user_id cannot be '\.' or '\.\.'$
--- store_unchanged: victim

=== user_id '..' is refused
--- request
POST /t
{"req_id":"dot-2","user_id":".."}
--- error_code: 400
--- error_field: user_id
--- error_message_like: ^user_id cannot be '\.' or '\.\.'$
--- store_unchanged: victim

=== req_id '..' and user_id '...' are accepted
--- request
POST /t
{"req_id":"..","user_id":"..."}
--- error_code: 200
--- store
... writes=1 history=..

=== req_id duplicated with an escaped key
--- request
POST /t
{"req_id":"e1","req_\u0069d":"e2","user_id":"victim"}
--- error_code: 400
--- error_field: req_id
--- error_message_like: duplicate
--- store_unchanged: victim

=== user_id duplicated with an escaped key
--- request
POST /t
{"user_id":"victim","req_id":"e3","\u0075ser_id":"other"}
--- error_code: 400
--- error_field: user_id
--- error_message_like: duplicate
--- store_unchanged: victim other

=== GET users without an id names no resource
--- request
GET /t/users/
--- error_code: 404
--- error_field: null

=== a 128-character req_id and user_id are accepted
--- request eval
"POST /t\n" . '{"req_id":"' . ('r' x 128) . '","user_id":"' . ('u' x 128) . '"}'
--- error_code: 200
--- store eval
('u' x 128) . " writes=1 history=" . ('r' x 128)

=== the default limit accepts 64 KiB
--- config
RaceQApplyDelay 0 0
--- request eval
my $head = '{"req_id":"default-max-1","user_id":"maxer2","pad":"';
"POST /t\n" . $head . ('p' x (65536 - length($head) - 2)) . '"}'
--- error_code: 200
--- store
maxer2 writes=1 history=default-max-1

=== the default limit refuses one byte more
--- config
RaceQApplyDelay 0 0
--- request eval
my $head = '{"req_id":"default-max-2","user_id":"maxer2","pad":"';
"POST /t\n" . $head . ('p' x (65537 - length($head) - 2)) . '"}'
--- error_code: 413
--- error_field: null
--- store_unchanged: maxer2
