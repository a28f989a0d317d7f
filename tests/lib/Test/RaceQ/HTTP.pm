package Test::RaceQ::HTTP;

# A small HTTP/1.1 client on raw sockets, so that tests can send what a
# well-behaved library would refuse to: bodies shorter than their declared
# Content-Length, chunked bodies, Expect: 100-continue, NUL bytes. Several
# requests are exchanged at once over non-blocking sockets, within one
# deadline, so a slow or silent server fails a test instead of hanging it.

use strict;
use warnings;

use Errno qw(EAGAIN EWOULDBLOCK EINTR EINPROGRESS);
use IO::Select;
use IO::Socket::INET;
use Time::HiRes qw(time);

$SIG{PIPE} = 'IGNORE';

# Serialises one request. A spec is either { raw => BYTES } or
# { method, path, headers => [[name, value], ...], body, chunks => [...] }.
# The headers are sent as given: the caller decides on Host, Content-Length
# and Transfer-Encoding. Returns the head, the body bytes and whether the
# body must wait for "100 Continue".
sub serialise {
    my ($spec) = @_;

    return ($spec->{raw}, '', 0) if defined $spec->{raw};

    my $head = "$spec->{method} $spec->{path} HTTP/1.1\r\n";
    my $expect = 0;
    for my $h (@{ $spec->{headers} || [] }) {
        $head .= "$h->[0]: $h->[1]\r\n";
        $expect = 1 if lc $h->[0] eq 'expect' && $h->[1] =~ /^100-continue$/i;
    }
    $head .= "\r\n";

    my $body = '';
    if ($spec->{chunks}) {
        for my $c (@{ $spec->{chunks} }) {
            next unless length $c;
            $body .= sprintf("%x\r\n", length $c) . $c . "\r\n";
        }
        $body .= "0\r\n\r\n";
    }
    elsif (defined $spec->{body}) {
        $body = $spec->{body};
    }

    return ($head, $body, $expect);
}

# Splits a complete head off the front of $$buf: returns (status, headers)
# or nothing when the head is not complete yet.
sub take_head {
    my ($buf) = @_;

    my $end = index $$buf, "\r\n\r\n";
    return if $end < 0;

    my $head = substr $$buf, 0, $end + 4, '';
    my ($line, @lines) = split /\r\n/, $head;
    my ($status) = $line =~ m{^HTTP/\d\.\d (\d{3})};
    my @headers;
    for (@lines) {
        push @headers, [$1, $2] if /^([^:]+):\s*(.*?)\s*$/;
    }
    return ($status // 0, \@headers, $line);
}

sub dechunk {
    my ($data) = @_;

    my $out = '';
    while ($data =~ s/\A([0-9a-fA-F]+)[^\r\n]*\r\n//) {
        my $len = hex $1;
        last if $len == 0;
        return (undef, 'truncated chunk') if length($data) < $len + 2;
        $out .= substr $data, 0, $len;
        substr($data, 0, $len + 2) = '';
    }
    return ($out, undef);
}

# Turns what was read on one connection into a response hash:
# { status, status_line, headers => [[n, v]], header => { lc name => v },
#   body, interim => [codes], error }.
sub parse_response {
    my ($conn) = @_;

    my $buf = $conn->{in};
    my $res = { interim => [@{ $conn->{interim} }], error => $conn->{error} };

    while (1) {
        my ($status, $headers, $line) = take_head(\$buf);
        if (!defined $status) {
            $res->{error} //= length $buf ? 'incomplete response head' : 'no response';
            $res->{status} = 0;
            $res->{body} = '';
            $res->{headers} = [];
            $res->{header} = {};
            return $res;
        }
        if ($status >= 100 && $status < 200) {
            push @{ $res->{interim} }, $status;
            next;
        }
        $res->{status} = $status;
        $res->{status_line} = $line;
        $res->{headers} = $headers;
        last;
    }

    my %h;
    for (@{ $res->{headers} }) {
        my $k = lc $_->[0];
        $h{$k} = defined $h{$k} ? "$h{$k}, $_->[1]" : $_->[1];
    }
    $res->{header} = \%h;

    if (($h{'transfer-encoding'} // '') =~ /chunked/i) {
        my ($body, $err) = dechunk($buf);
        $res->{body} = $body // '';
        $res->{error} //= $err;
    }
    elsif (defined $h{'content-length'}) {
        my $len = $h{'content-length'};
        $res->{error} //= 'body shorter than Content-Length' if length($buf) < $len;
        $res->{body} = substr $buf, 0, $len;
    }
    else {
        $res->{body} = $buf;
    }

    return $res;
}

sub open_conn {
    my ($port, $spec, $deadline) = @_;

    my ($head, $body, $expect) = serialise($spec);
    my $conn = { in => '', interim => [], error => undef, done => 0 };
    my $sock = IO::Socket::INET->new(
        PeerAddr => '127.0.0.1',
        PeerPort => $port,
        Proto    => 'tcp',
        Timeout  => 1 + int($deadline - time),
    );
    if (!$sock) {
        $conn->{error} = "connect: $!";
        $conn->{done} = 1;
        return $conn;
    }
    $sock->blocking(0);
    $conn->{sock} = $sock;
    $conn->{out} = $expect ? $head : $head . $body;
    $conn->{held} = $expect ? $body : undef;
    return $conn;
}

# A final response may arrive before the body was sent: an early 413, or an
# answer to Expect: 100-continue. Releases the held body only on a 100.
sub on_read {
    my ($conn) = @_;

    return unless defined $conn->{held};

    my $buf = $conn->{in};
    my ($status) = take_head(\$buf);
    return unless defined $status;

    if ($status == 100) {
        $conn->{in} = $buf;
        push @{ $conn->{interim} }, 100;
        $conn->{out} .= $conn->{held};
    }
    $conn->{held} = undef;
}

sub do_write {
    my ($conn) = @_;

    my $n = syswrite $conn->{sock}, $conn->{out};
    if (defined $n) {
        substr($conn->{out}, 0, $n) = '';
        return;
    }
    return if $! == EAGAIN || $! == EWOULDBLOCK || $! == EINTR;

    # The server closed its side: stop sending, read what it answered.
    $conn->{out} = '';
    $conn->{write_error} = "$!";
}

sub do_read {
    my ($conn) = @_;

    my $n = sysread $conn->{sock}, my $chunk, 65536;
    if (defined $n && $n > 0) {
        $conn->{in} .= $chunk;
        on_read($conn);
        return;
    }
    return if !defined $n && ($! == EAGAIN || $! == EWOULDBLOCK || $! == EINTR);

    $conn->{error} = "read: $!" if !defined $n && !length $conn->{in};
    $conn->{done} = 1;
    close $conn->{sock};
}

# Exchanges every spec at once over its own connection: all connect first,
# then all send, then all answers are read until each server side closes.
# Returns one response hash per spec, in order.
sub exchange {
    my (%a) = @_;

    my $deadline = time + ($a{timeout} || 10);
    my @conns = map { open_conn($a{port}, $_, $deadline) } @{ $a{requests} };

    while (1) {
        my @live = grep { !$_->{done} } @conns;
        last unless @live;

        my $left = $deadline - time;
        if ($left <= 0) {
            for (@live) {
                $_->{error} //= 'timeout: no complete answer within the deadline';
                $_->{done} = 1;
                close $_->{sock};
            }
            last;
        }

        my $rd = IO::Select->new(map { $_->{sock} } @live);
        my $wr = IO::Select->new(map { $_->{sock} } grep { length $_->{out} } @live);
        my ($r, $w) = IO::Select->select($rd, $wr, undef, $left);
        my %ready_r = map { ($_ => 1) } @{ $r || [] };
        my %ready_w = map { ($_ => 1) } @{ $w || [] };

        for my $c (@live) {
            do_write($c) if $ready_w{ $c->{sock} } && length $c->{out};
            do_read($c) if $ready_r{ $c->{sock} };
        }
    }

    return map { parse_response($_) } @conns;
}

1;
