# Every field of the module's per-directory configuration starts unset in
# dir_create, is merged in dir_merge and is read in conf_get, the one place
# where defaults live. A field added to the struct and forgotten in one of
# them fails here.

use strict;
use warnings;
use Test::More;
use FindBin;

my $src = do {
    local $/;
    open(my $fh, '<', "$FindBin::Bin/../mod_raceq.c") or die "mod_raceq.c: $!";
    <$fh>;
};

sub body_of {
    my ($name) = @_;
    $src =~ /\n[^\n]*\b\Q$name\E\([^)]*\)\n\{\n(.*?)\n\}\n/s
      or die "function $name not found in mod_raceq.c\n";
    return $1;
}

$src =~ /typedef struct raceq_dir_t \{\n(.*?)\n\} raceq_dir_t;/s
  or die "struct raceq_dir_t not found in mod_raceq.c\n";
my @fields = map { /^\s*(.+?)\s*\*?\s*(\w+);/ ? [$1, $2] : () } split /\n/, $1;
cmp_ok(scalar @fields, '>=', 14, 'the struct was read: ' . scalar(@fields) . ' fields');

my $create = body_of('dir_create');
my $merge = body_of('dir_merge');
my $get = body_of('conf_get');

for my $f (@fields) {
    my ($type, $name) = @$f;
    like($merge, qr/\bd->\Q$name\E = /, "dir_merge sets $name");
    like($get, qr/\bd->\Q$name\E\b/, "conf_get reads $name");
    next if $type =~ /char/;    # pointers start NULL (apr_pcalloc)
    like($create, qr/\bd->\Q$name\E = /, "dir_create marks $name unset");
}

done_testing;
