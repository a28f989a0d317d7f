# The layout rules every source file keeps: lines of at most 100 columns, no
# trailing whitespace, no tabs. Files under tests/node_modules and
# tests/sigv4 (golden data) are not ours to format.

use strict;
use warnings;

use Cwd qw(abs_path);
use File::Basename qw(dirname);
use File::Find;
use Test::More;

my $root = abs_path(dirname(__FILE__) . '/..');
my $max = 100;

my @files;
find({
    no_chdir => 1,
    wanted   => sub {
        return if $File::Find::name eq $root;
        my $rel = substr $File::Find::name, length($root) + 1;
        if (-d $_) {
            $File::Find::prune = 1
                if $rel =~ m{^(?:\.git|tests/node_modules|tests/sigv4|tests/tmp|\.libs)$};
            return;
        }
        push @files, $rel if $rel =~ /\.(?:c|h|pm|t|sh)$/;
    },
}, $root);

ok(scalar @files, 'source files found');

for my $rel (sort @files) {
    open my $fh, '<:raw', "$root/$rel" or die "$rel: $!";
    my @bad;
    while (my $line = <$fh>) {
        $line =~ s/\r?\n\z//;
        my $where = "$rel:$.";
        push @bad, "$where: tab" if $line =~ /\t/;
        push @bad, "$where: trailing whitespace" if $line =~ /[ \t]\z/;
        my $cols = length do { my $u = $line; utf8::decode($u); $u };
        push @bad, "$where: $cols columns" if $cols > $max;
    }
    close $fh;
    ok(!@bad, "$rel: layout") or diag(join "\n", @bad);
}

done_testing();
