#!/usr/bin/perl
# A stand-in for the ECS container credentials endpoint and EC2 instance
# metadata (IMDSv2), on 127.0.0.1, speaking their wire formats:
#   GET /ecs/creds                     needs "Authorization: <token>"
#   PUT /latest/api/token              needs X-aws-ec2-metadata-token-ttl-seconds
#   GET /latest/meta-data/...          needs X-aws-ec2-metadata-token, else 401
# and a control path for the tests:
#   GET /control/set?expiry=S&fail=0|1&hang=S   credentials expire S seconds
#       from now; fail answers 500; hang waits S seconds before answering
#   GET /control/stats                 "served=N tokens=M"
# Prints "PORT <n>" on stdout once listening; exits when its parent is gone.
use strict;
use warnings;
use HTTP::Daemon;
use HTTP::Response;
use HTTP::Status qw(:constants);
use POSIX qw(strftime);
use Getopt::Long;

my $ecs_token = '';
my $role = 'raceq-role';
GetOptions('ecs-token=s' => \$ecs_token) or die "usage: $0 --ecs-token TOKEN\n";

my %state = (expiry => 3600, fail => 0, hang => 0, served => 0, tokens => 0);
my %imds_tokens;
my $parent = getppid();

my $d = HTTP::Daemon->new(LocalAddr => '127.0.0.1', LocalPort => 0, ReuseAddr => 1,
                          Timeout => 1) or die "cannot listen: $!\n";
$| = 1;
print "PORT ", $d->sockport, "\n";

sub reply {
    my ($code, $type, $body) = @_;
    my $r = HTTP::Response->new($code);
    $r->header('Content-Type' => $type);
    $r->content($body);
    return $r;
}

sub json_error {
    my ($code, $msg) = @_;
    return reply($code, 'application/json', qq({"message":"$msg"}));
}

sub credentials {
    my ($imds) = @_;
    sleep $state{hang} if $state{hang};
    return json_error(500, 'InternalError') if $state{fail};
    my $n = ++$state{served};
    my $exp = strftime('%Y-%m-%dT%H:%M:%SZ', gmtime(time + $state{expiry}));
    my $now = strftime('%Y-%m-%dT%H:%M:%SZ', gmtime(time));
    my $extra = $imds ? qq("Code":"Success","LastUpdated":"$now","Type":"AWS-HMAC",)
                      : qq("RoleArn":"arn:aws:iam::123456789012:role/$role",);
    return reply(200, 'application/json',
                 sprintf('{%s"AccessKeyId":"ASIASTUB%08d","SecretAccessKey":"stub/secret/%d/'
                         . 'wJalrXUtnFEMI","Token":"stub-session-token-%d","Expiration":"%s"}',
                         $extra, $n, $n, $n, $exp));
}

sub control {
    my ($uri) = @_;
    my %q = $uri->query_form;
    if ($uri->path eq '/control/stats') {
        return reply(200, 'text/plain', "served=$state{served} tokens=$state{tokens}");
    }
    for my $k (qw(expiry fail hang)) {
        $state{$k} = $q{$k} if defined $q{$k};
    }
    return reply(200, 'text/plain', 'ok');
}

sub imds_token {
    my ($req) = @_;
    my $ttl = $req->header('X-aws-ec2-metadata-token-ttl-seconds');
    return reply(400, 'text/plain', 'Bad Request')
        unless defined $ttl && $ttl =~ /^\d+$/ && $ttl >= 1 && $ttl <= 21600;
    my $token = 'stub-imds-token-' . ++$state{tokens} . '-' . int(rand(1e9));
    $imds_tokens{$token} = 1;
    my $r = reply(200, 'text/plain', $token);
    $r->header('X-aws-ec2-metadata-token-ttl-seconds' => $ttl);
    return $r;
}

sub imds_get {
    my ($req) = @_;
    my $token = $req->header('X-aws-ec2-metadata-token');
    return reply(401, 'text/plain', 'Unauthorized')
        unless defined $token && $imds_tokens{$token};
    my $path = $req->uri->path;
    my $base = '/latest/meta-data/iam/security-credentials/';
    return reply(200, 'text/plain', $role) if $path eq $base;
    return credentials(1) if $path eq "$base$role";
    return reply(404, 'text/plain', 'Not Found');
}

sub route {
    my ($req) = @_;
    my $path = $req->uri->path;
    my $m = $req->method;
    return control($req->uri) if $m eq 'GET' && $path =~ m{^/control/};
    if ($path eq '/ecs/creds' && $m eq 'GET') {
        my $auth = $req->header('Authorization') // '';
        return json_error(401, 'Unauthorized') unless $ecs_token ne '' && $auth eq $ecs_token;
        return credentials(0);
    }
    return imds_token($req) if $path eq '/latest/api/token' && $m eq 'PUT';
    return imds_get($req) if $path =~ m{^/latest/} && $m eq 'GET';
    return reply(405, 'text/plain', 'Method Not Allowed') if $path =~ m{^/latest/};
    return reply(404, 'text/plain', 'Not Found');
}

my $deadline = time + 300;
while (getppid() == $parent && time < $deadline) {
    my $c = $d->accept or next;
    while (my $req = $c->get_request) {
        $c->send_response(route($req));
    }
    $c->close;
}
