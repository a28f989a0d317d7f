# Directives that httpd must refuse at start-up, with a message naming them.

use Test::RaceQ;

run_tests();

__DATA__

=== RaceQEndpoint without a host is refused
--- config
RaceQEndpoint http://
--- must_die
--- error_log
RaceQEndpoint takes an http:// or https:// URL, not 'http://'

=== RaceQEndpoint with a port but no host is refused
--- config
RaceQEndpoint https://:4566
--- must_die
--- error_log
RaceQEndpoint takes an http:// or https:// URL, not 'https://:4566'

=== RaceQEndpoint without a scheme is refused
--- config
RaceQEndpoint localhost:4566
--- must_die
--- error_log
RaceQEndpoint takes an http:// or https:// URL

=== RaceQEndpoint with another scheme is refused
--- config
RaceQEndpoint ftp://sqs.example
--- must_die
--- error_log
RaceQEndpoint takes an http:// or https:// URL

=== RaceQQueueURL without a host is refused
--- config
RaceQQueueURL http:///000000000000/q.fifo
--- must_die
--- error_log
RaceQQueueURL takes an http:// or https:// URL

=== a full RaceQEndpoint and RaceQQueueURL are accepted
--- config
RaceQEndpoint http://127.0.0.1:4566
RaceQQueueURL http://127.0.0.1:4566/000000000000/q.fifo
--- request
GET /t/users/nobody
--- error_code: 200
