#!/usr/bin/perl
# The tables of "make demo", from raceq-fire's JSON and the logs of the run.
#
#   demo-report.pl --dir TMP --base URL section race|fifo
#   demo-report.pl --dir TMP --base URL summary
#   demo-report.pl --dir TMP --base URL json --queue KIND --users N --per-user M --delay "A B"
#
# TMP holds MODE.json (raceq-fire --json), error_log and raceqd.log, and
# MODE.error_log.from / MODE.raceqd_log.from, the logs' sizes when MODE was
# fired. Every figure printed comes from raceq-fire; the log lines are
# quoted as logged. Exits 1 when a mode failed its check: a request not
# answered 200, or, in fifo mode, a lost update or an order violation.

use strict;
use warnings;

use Getopt::Long qw(GetOptions);
use HTTP::Tiny;
use JSON::PP;

my %opt;
GetOptions(\%opt, 'dir=s', 'base=s', 'queue=s', 'users=i', 'per-user=i', 'delay=s')
    or die "demo-report: bad options\n";
my $cmd = shift @ARGV // die "demo-report: section, summary or json\n";
my $DIR = $opt{dir} // die "demo-report: --dir\n";

my %TITLE = (
    race => 'race mode: the handler applies each write itself, concurrently',
    fifo => 'fifo mode: each write goes through the SQS FIFO queue to raceqd, '
          . 'one at a time per user',
);

sub slurp {
    my ($path) = @_;
    open(my $fh, '<', $path) or return undef;
    local $/;
    return scalar <$fh>;
}

sub fire_text {
    my ($mode) = @_;
    my $text = slurp("$DIR/$mode.json");
    die "demo-report: no raceq-fire output for $mode\n" unless defined $text && $text =~ /\S/;
    $text =~ s/\s+\z//;
    return $text;
}

sub fire { return decode_json(fire_text($_[0])) }

sub ms {
    my ($us) = @_;
    return $us >= 10_000_000 ? sprintf('%.1f s', $us / 1e6) : sprintf('%d ms', $us / 1000 + 0.5);
}

sub answers_text {
    my ($r) = @_;
    my $a = $r->{answers};
    my @parts = map { "$_: $a->{$_}" } sort keys %$a;
    push @parts, "none: $r->{no_answer}" if $r->{no_answer};
    return @parts ? join(', ', @parts) : 'none';
}

# What makes the mode fail the demo, as sentences.
sub problems {
    my ($mode, $r) = @_;
    my @p;
    my $ok = $r->{answers}{200} // 0;
    if ($ok != $r->{requests}) {
        push @p, sprintf('%s: %d of %d requests were not answered 200 (%s)',
                         $mode, $r->{requests} - $ok, $r->{requests}, answers_text($r));
    }
    push @p, "$mode: $r->{bad_echo} answers did not echo the request" if $r->{bad_echo};
    if ($mode eq 'fifo') {
        push @p, "fifo: $r->{lost_updates} updates were lost" if $r->{lost_updates};
        push @p, "fifo: $r->{order_violations} writes were applied out of queue order"
            if $r->{order_violations};
    }
    return @p;
}

# The finding-/writing- lines of one user written while MODE was fired.
sub log_lines {
    my ($mode, $user) = @_;
    my ($file, $from) = $mode eq 'race'
        ? ('error_log', "$mode.error_log.from") : ('raceqd.log', "$mode.raceqd_log.from");
    my $text = slurp("$DIR/$file") // '';
    my $off = slurp("$DIR/$from") // 0;
    $off =~ s/\s+//g;
    $text = substr($text, $off) if $off && $off <= length $text;
    my @lines;
    for my $l (split /\n/, $text) {
        next unless $l =~ /RQ0201[01]: ((finding|writing)-(.+)___\Q$user\E)\s*$/;
        my ($msg, $what, $req) = ($1, $2, $3);
        my ($time) = $l =~ /^\[\w+ \w+ +\d+ ([\d:.]+) \d+\]/;
        push @lines, { time => $time // '?', msg => $msg, what => $what, req => $req };
    }
    return @lines;
}

# The user's history from the store: req_id => { seq, start, finish }.
sub history {
    my ($mode, $user) = @_;
    my $res = HTTP::Tiny->new(timeout => 10)->get("$opt{base}/$mode/users/$user");
    return {} unless $res->{success};
    my $state = eval { decode_json($res->{content}) } or return {};
    return { map { ($_->{req_id} => $_) } @{ $state->{history} // [] } };
}

sub clock {
    my ($us) = @_;
    my @t = localtime(int($us / 1e6));
    return sprintf('%02d:%02d:%02d.%06d', @t[2, 1, 0], $us % 1e6);
}

sub section {
    my ($mode) = @_;
    my $r = fire($mode);
    my @users = @{ $r->{by_user} };

    print "$TITLE{$mode}\n";
    printf "  %-22s %5s %5s %7s %5s %6s\n", 'user', 'sent', '200', 'writes', 'lost', 'order';
    for my $u (@users) {
        printf "  %-22s %5d %5d %7d %5d %6d\n", $u->{user_id}, $u->{sent}, $u->{answered_200},
            $u->{writes}, $u->{lost_updates}, $u->{order_violations};
    }
    printf "  %-22s %5d %5d %7d %5d %6d\n", 'all', $r->{requests}, $r->{answers}{200} // 0,
        $r->{writes}, $r->{lost_updates}, $r->{order_violations};
    printf "  answers %s   wall time %s   critical path %s   latency p50 %s, max %s\n",
        answers_text($r), ms($r->{wall_us}), ms($r->{critical_path_us}),
        ms($r->{latency_us}{p50}), ms($r->{latency_us}{max});

    # The user that shows the mode best: the most lost in race mode.
    my ($pick) = $mode eq 'race'
        ? sort { $b->{lost_updates} <=> $a->{lost_updates} } @users
        : @users;
    my @lines = log_lines($mode, $pick->{user_id});
    print "\n";
    if ($mode eq 'race') {
        printf "  httpd's error_log, user %s (finding = read the state, writing = write it"
            . " back):\n", $pick->{user_id};
    } else {
        # raceqd logs whole seconds; the store has each apply's times.
        my $h = history($mode, $pick->{user_id});
        for my $l (@lines) {
            my $e = $h->{ $l->{req} } or next;
            $l->{time} = clock($l->{what} eq 'finding' ? $e->{start} : $e->{finish});
            $l->{note} = "  seq $e->{seq}" if $l->{what} eq 'finding' && defined $e->{seq};
        }
        printf "  raceqd's log, user %s, times from the store, seq = SQS sequence number:\n",
            $pick->{user_id};
    }
    my $max = 12;
    for my $i (0 .. $#lines) {
        last if $i >= $max;
        my $l = $lines[$i];
        printf "    %-16s %s%s\n", $l->{time}, $l->{msg}, $l->{note} // '';
    }
    printf "    ... %d more\n", @lines - $max if @lines > $max;
    print "    (no finding/writing lines of this user in the log)\n" unless @lines;

    # Reads that came while another write of this user was in progress.
    my (%open, $overlap, $reads);
    for my $l (@lines) {
        if ($l->{what} eq 'finding') {
            $reads++;
            $overlap++ if %open;
            $open{ $l->{req} } = 1;
        } else {
            delete $open{ $l->{req} };
        }
    }
    if ($reads) {
        printf "  %d of %d reads came while another write of this user was in progress.\n",
            $overlap // 0, $reads;
    }

    my @p = problems($mode, $r);
    print "\n";
    if (@p) {
        print "  FAILED: $_\n" for @p;
    } elsif ($mode eq 'race') {
        if ($r->{lost_updates}) {
            printf "  => every request was answered 200, yet %d of %d updates are lost.\n",
                $r->{lost_updates}, $r->{requests};
        } else {
            print "  => no update was lost this time: the writes hardly overlapped"
                . " (a longer DELAY shows it).\n";
        }
    } else {
        printf "  => all %d writes stored, each user's in queue order: nothing lost.\n",
            $r->{writes};
    }
    return @p ? 1 : 0;
}

sub summary {
    my %r = map { ($_ => fire($_)) } qw(race fifo);
    my @rows = (
        ['answered 200', map { sprintf('%d / %d', $_->{answers}{200} // 0, $_->{requests}) }
            @r{qw(race fifo)}],
        ['writes stored', map { $_->{writes} } @r{qw(race fifo)}],
        ['lost updates', map { $_->{lost_updates} } @r{qw(race fifo)}],
        ['order violations', map { $_->{order_violations} } @r{qw(race fifo)}],
        ['wall time', map { ms($_->{wall_us}) } @r{qw(race fifo)}],
        ['critical path', map { ms($_->{critical_path_us}) } @r{qw(race fifo)}],
    );
    print "side by side (figures from raceq-fire)\n";
    printf "  %-18s %12s %12s\n", '', 'race', 'fifo';
    printf "  %-18s %12s %12s\n", @$_ for @rows;
    my $f = $r{fifo};
    if ($f->{critical_path_us} > 0 && !problems('fifo', $f)) {
        printf "  fifo wall time / critical path: %.2f (1.00 is the least any design can do)\n",
            $f->{wall_us} / $f->{critical_path_us};
    }
    my @p = (problems('race', $r{race}), problems('fifo', $f));
    print "\n";
    if (@p) {
        print "demo FAILED:\n";
        print "  $_\n" for @p;
        return 1;
    }
    print "demo OK: race mode lost $r{race}{lost_updates} of $r{race}{requests} updates;"
        . " fifo mode lost none and kept every user's order.\n";
    return 0;
}

sub json_doc {
    my @delay = split ' ', $opt{delay} // '';
    my @p = (problems('race', fire('race')), problems('fifo', fire('fifo')));
    my $head = JSON::PP->new->canonical->encode({
        queue => $opt{queue}, users => $opt{users}, per_user => $opt{'per-user'},
        apply_delay_ms => [map { $_ + 0 } @delay], base_url => $opt{base},
        ok => @p ? JSON::PP::false : JSON::PP::true, problems => \@p,
    });
    $head =~ s/\}\z//;
    print $head, ',"race":', fire_text('race'), ',"fifo":', fire_text('fifo'), "}\n";
    return @p ? 1 : 0;
}

my $rc;
if ($cmd eq 'section') {
    my $mode = shift @ARGV // '';
    die "demo-report: section race|fifo\n" unless $TITLE{$mode};
    $rc = section($mode);
} elsif ($cmd eq 'summary') {
    $rc = summary();
} elsif ($cmd eq 'json') {
    $rc = json_doc();
} else {
    die "demo-report: unknown command $cmd\n";
}
exit $rc;
