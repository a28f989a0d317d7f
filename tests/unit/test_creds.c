/*
 * Settings and credentials without a network: the environment, the .env
 * file, the shared credentials and config files, their precedence, region
 * and endpoint resolution, and the errors when something is missing.
 * HOME points at a temporary directory, so the real ~/.aws is never read.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <apr_general.h>
#include <apr_strings.h>
#include <apr_thread_proc.h>

#include "rq_creds.h"
#include "rq_env.h"
#include "rq_log.h"
#include "rq_tap.h"

static apr_pool_t *pool;
static const char *tmp;
static char logbuf[64 * 1024];

static const char *const aws_vars[] = {
    "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE",
    "AWS_DEFAULT_PROFILE", "AWS_REGION", "AWS_DEFAULT_REGION", "AWS_FIFO_URL",
    "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_SQS", "AWS_CONFIG_FILE",
    "AWS_SHARED_CREDENTIALS_FILE", "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
    "AWS_CONTAINER_CREDENTIALS_FULL_URI", "AWS_CONTAINER_AUTHORIZATION_TOKEN",
    "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE", "AWS_EC2_METADATA_SERVICE_ENDPOINT",
    "AWS_EC2_METADATA_SERVICE_ENDPOINT_MODE", "AWS_EC2_METADATA_DISABLED",
    "AWS_WEB_IDENTITY_TOKEN_FILE", "AWS_ROLE_ARN", NULL
};

static void log_capture(void *baton, const char *file, int line, int level, apr_status_t rv,
                        const char *msg)
{
    (void)baton;
    (void)file;
    (void)line;
    (void)level;
    (void)rv;
    strncat(logbuf, msg, sizeof(logbuf) - strlen(logbuf) - 2);
    strcat(logbuf, "\n");
}

static int log_all(void *baton, int level)
{
    (void)baton;
    (void)level;
    return 1;
}

/* Shows the captured log lines as TAP comments. */
static void log_show(void)
{
    char *line, *last;

    for (line = apr_strtok(apr_pstrdup(pool, logbuf), "\n", &last); line;
         line = apr_strtok(NULL, "\n", &last)) {
        printf("# log: %s\n", line);
    }
}

/* Every test starts from an environment with no AWS settings at all. */
static void env_reset(void)
{
    int i;

    for (i = 0; aws_vars[i]; i++) {
        unsetenv(aws_vars[i]);
    }
    setenv("HOME", apr_pstrcat(pool, tmp, "/home", NULL), 1);
    setenv("AWS_EC2_METADATA_DISABLED", "true", 1);
    logbuf[0] = '\0';
}

static const char *put_file(const char *rel, const char *text)
{
    const char *path = apr_pstrcat(pool, tmp, "/", rel, NULL);
    FILE *f;

    mkdir(apr_pstrcat(pool, tmp, "/home", NULL), 0700);
    mkdir(apr_pstrcat(pool, tmp, "/home/.aws", NULL), 0700);
    f = fopen(path, "w");
    if (!f) {
        perror(path);
        exit(1);
    }
    fputs(text, f);
    fclose(f);
    return path;
}

static void drop_file(const char *rel)
{
    unlink(apr_pstrcat(pool, tmp, "/", rel, NULL));
}

/* Resolves the settings and fetches credentials once with a new provider. */
static apr_status_t creds_once(rq_creds_t *out, const char **perr, const rq_aws_conf_t *given)
{
    rq_aws_conf_t conf = *given;
    rq_creds_provider_t *prov;
    apr_status_t rv;

    memset(out, 0, sizeof(*out));
    *perr = NULL;
    rv = rq_creds_provider_create_ex(&prov, perr, pool, &conf, NULL);
    if (rv != APR_SUCCESS) {
        return rv;
    }
    return rq_creds_get_ex(out, perr, pool, prov);
}

static void test_environment(void)
{
    rq_aws_conf_t given = { 0 };
    rq_creds_t c;
    const char *err;
    apr_status_t rv;

    env_reset();
    setenv("AWS_ACCESS_KEY_ID", "AKIDENVIRONMENT1", 1);
    setenv("AWS_SECRET_ACCESS_KEY", "envsecret/abcdefghijklmnop", 1);
    rv = creds_once(&c, &err, &given);
    RQ_IS_INT(rv, APR_SUCCESS, "environment: found");
    RQ_IS_STR(c.access_key, "AKIDENVIRONMENT1", "environment: access key");
    RQ_IS_STR(c.secret_key, "envsecret/abcdefghijklmnop", "environment: secret key");
    RQ_IS_STR(c.session_token, NULL, "environment: no session token");
    RQ_IS_INT(c.expires, 0, "environment: no expiry");
    RQ_IS_STR(c.source, "the environment", "environment: source");

    setenv("AWS_SESSION_TOKEN", "envtoken-xyz", 1);
    rv = creds_once(&c, &err, &given);
    RQ_IS_STR(c.session_token, "envtoken-xyz", "environment: session token");

    unsetenv("AWS_SECRET_ACCESS_KEY");
    rv = creds_once(&c, &err, &given);
    RQ_IS_INT(rv, RQ_CREDS_ENONE, "environment: a key id without a secret is an error");
    RQ_OK(err && strstr(err, "sets AWS_ACCESS_KEY_ID but not AWS_SECRET_ACCESS_KEY"),
          "environment: the error names the missing variable: %s", err);
}

static void test_env_file(void)
{
    rq_aws_conf_t given = { 0 };
    rq_creds_t c;
    const char *err;
    apr_status_t rv;

    env_reset();
    given.env_file = put_file("creds.env", "# demo\n"
                                           "export AWS_ACCESS_KEY_ID=AKIDDOTENV000001\n"
                                           "AWS_SECRET_ACCESS_KEY='dotenv/secret+value'\n"
                                           "AWS_SESSION_TOKEN=\"dotenv-token\"\n");
    rv = creds_once(&c, &err, &given);
    RQ_IS_INT(rv, APR_SUCCESS, ".env: found");
    RQ_IS_STR(c.access_key, "AKIDDOTENV000001", ".env: access key");
    RQ_IS_STR(c.secret_key, "dotenv/secret+value", ".env: secret key");
    RQ_IS_STR(c.session_token, "dotenv-token", ".env: session token");
    RQ_OK(c.source && strstr(c.source, "creds.env"), ".env: source names the file: %s",
          c.source);

    setenv("AWS_ACCESS_KEY_ID", "AKIDENVIRONMENT2", 1);
    setenv("AWS_SECRET_ACCESS_KEY", "envsecret2", 1);
    rv = creds_once(&c, &err, &given);
    RQ_IS_STR(c.access_key, "AKIDENVIRONMENT2", "the environment wins over .env");
    RQ_IS_STR(c.session_token, NULL, "and the .env token is not mixed in");

    env_reset();
    given.env_file = put_file("bad.env", "AWS_REGION=eu-west-1\nAWS_PROFILE 'x'\n");
    rv = creds_once(&c, &err, &given);
    RQ_IS_INT(rv, RQ_ENV_ESYNTAX, ".env: a bad line is an error");
    RQ_OK(err && strstr(err, "bad.env:2:"), ".env: the error names file and line: %s", err);

    given.env_file = apr_pstrcat(pool, tmp, "/absent.env", NULL);
    rv = creds_once(&c, &err, &given);
    RQ_OK(APR_STATUS_IS_ENOENT(rv), ".env: a named file that is missing is an error");
    RQ_OK(err && strstr(err, "absent.env"), ".env: the error names the file: %s", err);
}

static void test_shared_files(void)
{
    rq_aws_conf_t given = { 0 };
    rq_creds_t c;
    const char *err;
    apr_status_t rv;

    env_reset();
    put_file("home/.aws/credentials", "[default]\n"
                                      "aws_access_key_id = AKIDSHAREDDEFAULT\n"
                                      "aws_secret_access_key = shared/default/secret\n"
                                      "[work]\n"
                                      "aws_access_key_id=AKIDSHAREDWORK01\n"
                                      "aws_secret_access_key=shared/work/secret\n"
                                      "aws_session_token=work-token\n");
    put_file("home/.aws/config", "[default]\n"
                                 "region = eu-north-1\n"
                                 "[profile cfgonly]\n"
                                 "aws_access_key_id = AKIDCONFIGONLY01\n"
                                 "aws_secret_access_key = config/secret\n"
                                 "[profile assume]\n"
                                 "role_arn = arn:aws:iam::123456789012:role/x\n"
                                 "source_profile = default\n");

    rv = creds_once(&c, &err, &given);
    RQ_IS_INT(rv, APR_SUCCESS, "~/.aws/credentials: found");
    RQ_IS_STR(c.access_key, "AKIDSHAREDDEFAULT", "~/.aws/credentials: default profile");
    RQ_OK(c.source && strstr(c.source, "profile \"default\" in shared credentials file"),
          "source names the profile and file: %s", c.source);

    setenv("AWS_PROFILE", "work", 1);
    rv = creds_once(&c, &err, &given);
    RQ_IS_STR(c.access_key, "AKIDSHAREDWORK01", "AWS_PROFILE selects the profile");
    RQ_IS_STR(c.session_token, "work-token", "aws_session_token is read");

    given.profile = "default";
    rv = creds_once(&c, &err, &given);
    RQ_IS_STR(c.access_key, "AKIDSHAREDDEFAULT", "a given profile wins over AWS_PROFILE");
    given.profile = NULL;

    setenv("AWS_PROFILE", "cfgonly", 1);
    rv = creds_once(&c, &err, &given);
    RQ_IS_STR(c.access_key, "AKIDCONFIGONLY01", "keys from the config file's [profile x]");
    RQ_OK(c.source && strstr(c.source, "config file"), "source is the config file: %s",
          c.source);

    setenv("AWS_PROFILE", "assume", 1);
    rv = creds_once(&c, &err, &given);
    RQ_IS_INT(rv, RQ_CREDS_ENONE, "a role_arn profile is refused");
    RQ_OK(err && strstr(err, "uses role_arn, which is not supported"),
          "and the error says why: %s", err);

    setenv("AWS_PROFILE", "nosuch", 1);
    rv = creds_once(&c, &err, &given);
    RQ_IS_INT(rv, RQ_CREDS_ENONE, "an unknown profile: no credentials");
    RQ_OK(err && strstr(err, "no profile \"nosuch\""), "the error names the profile: %s", err);
}

static void test_shared_overrides(void)
{
    rq_aws_conf_t given = { 0 };
    rq_creds_t c;
    const char *err;
    apr_status_t rv;

    env_reset();
    put_file("home/.aws/credentials", "[default]\naws_access_key_id = AKIDHOMEFILE0001\n"
                                      "aws_secret_access_key = home/secret\n");
    setenv("AWS_SHARED_CREDENTIALS_FILE", put_file("other-creds",
                                                   "[default]\n"
                                                   "aws_access_key_id = AKIDOTHERFILE001\n"
                                                   "aws_secret_access_key = other/secret\n"), 1);
    rv = creds_once(&c, &err, &given);
    RQ_IS_STR(c.access_key, "AKIDOTHERFILE001", "AWS_SHARED_CREDENTIALS_FILE is used");

    given.env_file = put_file("paths.env", "AWS_ACCESS_KEY_ID=AKIDDOTENVWINS01\n"
                                           "AWS_SECRET_ACCESS_KEY=dotenv/wins\n");
    rv = creds_once(&c, &err, &given);
    RQ_IS_STR(c.access_key, "AKIDDOTENVWINS01", ".env wins over the shared files");
    given.env_file = NULL;

    unsetenv("AWS_SHARED_CREDENTIALS_FILE");
    drop_file("home/.aws/credentials");
    setenv("AWS_CONFIG_FILE", put_file("other-config",
                                       "[profile default]\n"
                                       "aws_access_key_id = AKIDOTHERCONFIG1\n"
                                       "aws_secret_access_key = other/config\n"), 1);
    rv = creds_once(&c, &err, &given);
    RQ_IS_STR(c.access_key, "AKIDOTHERCONFIG1",
              "AWS_CONFIG_FILE is used, [profile default] accepted");

    put_file("home/.aws/credentials", "[default]\naws_access_key_id = AKIDHOMEFILE0001\n"
                                      "aws_secret_access_key = home/secret\n");
    rv = creds_once(&c, &err, &given);
    RQ_IS_STR(c.access_key, "AKIDHOMEFILE0001", "the credentials file wins over config");

    put_file("home/.aws/credentials", "[default]\naws_access_key_id\n");
    rv = creds_once(&c, &err, &given);
    RQ_IS_INT(rv, RQ_CREDS_EBADFILE, "a malformed credentials file is an error");
    RQ_OK(err && strstr(err, ".aws/credentials:2:"), "naming file and line: %s", err);
    drop_file("home/.aws/credentials");
}

static void test_none(void)
{
    rq_aws_conf_t given = { 0 };
    rq_creds_t c;
    const char *err;
    apr_status_t rv;

    env_reset();
    drop_file("home/.aws/config");
    rv = creds_once(&c, &err, &given);
    RQ_IS_INT(rv, RQ_CREDS_ENONE, "nothing anywhere: RQ_CREDS_ENONE");
    RQ_OK(err && strstr(err, "no AWS credentials found"), "the error says so: %s", err);
    RQ_OK(err && strstr(err, "the environment: no AWS_ACCESS_KEY_ID"), "lists the environment");
    RQ_OK(err && strstr(err, ".env file: none given"), "lists the .env file");
    RQ_OK(err && strstr(err, "shared credentials file") && strstr(err, "does not exist"),
          "lists the shared credentials file");
    RQ_OK(err && strstr(err, "config file"), "lists the config file");
    RQ_OK(err && strstr(err, "container credentials: neither"), "lists the container source");
    RQ_OK(err && strstr(err, "instance metadata: disabled by AWS_EC2_METADATA_DISABLED"),
          "lists instance metadata");

    rq_log_set(log_capture, log_all, NULL);
    {
        rq_creds_provider_t *prov;

        rq_creds_provider_create(&prov, pool, &given);
        rv = rq_creds_get(&c, pool, prov);
    }
    rq_log_set(NULL, NULL, NULL);
    RQ_IS_INT(rv, RQ_CREDS_ENONE, "rq_creds_get fails the same way");
    RQ_OK(strstr(logbuf, "RQ04005: no AWS credentials found"), "and logs the reason");
}

static void test_caching_and_logs(void)
{
    rq_aws_conf_t given = { 0 };
    rq_creds_provider_t *prov;
    rq_creds_t c;
    apr_status_t rv;

    env_reset();
    rq_log_set(log_capture, log_all, NULL);
    setenv("AWS_ACCESS_KEY_ID", "AKIDCACHED000001", 1);
    setenv("AWS_SECRET_ACCESS_KEY", "cached/secret/value", 1);
    setenv("AWS_SESSION_TOKEN", "cached-session-token", 1);
    rq_creds_provider_create(&prov, pool, &given);
    rv = rq_creds_get(&c, pool, prov);
    RQ_IS_INT(rv, APR_SUCCESS, "cached: first get");
    log_show();

    setenv("AWS_ACCESS_KEY_ID", "AKIDCHANGED00001", 1);
    rv = rq_creds_get(&c, pool, prov);
    rq_log_set(NULL, NULL, NULL);
    RQ_IS_STR(c.access_key, "AKIDCACHED000001", "static credentials are read once and kept");

    RQ_OK(strstr(logbuf, "RQ04003: using AWS credentials from the environment: access key "
                         "AKID****") != NULL, "debug line names the source, key masked");
    RQ_OK(!strstr(logbuf, "AKIDCACHED000001") && !strstr(logbuf, "cached/secret/value")
          && !strstr(logbuf, "cached-session-token"), "no secret in any log line");
}

static void conf_check(const rq_aws_conf_t *given, const char *field, const char *want,
                       const char *what)
{
    rq_aws_conf_t out;
    const char *err = NULL;
    const char *got;
    apr_status_t rv = rq_aws_conf_resolve_ex(&out, &err, pool, given);

    if (rv != APR_SUCCESS) {
        printf("# %s\n", err);
    }
    got = rv != APR_SUCCESS ? NULL
        : strcmp(field, "region") == 0 ? out.region
        : strcmp(field, "endpoint") == 0 ? out.endpoint
        : strcmp(field, "queue_url") == 0 ? out.queue_url
        : out.profile;
    RQ_IS_STR(got, want, "%s", what);
}

static void test_region(void)
{
    rq_aws_conf_t given = { 0 };

    env_reset();
    drop_file("home/.aws/config");
    given.queue_url = "https://sqs.ap-south-1.amazonaws.com/123456789012/jobs.fifo";
    conf_check(&given, "region", "ap-south-1", "region from the queue URL's host");
    given.queue_url = "https://eu-west-3.queue.amazonaws.com/123456789012/jobs.fifo";
    conf_check(&given, "region", "eu-west-3", "region from a legacy queue host");
    given.queue_url = "https://queue.amazonaws.com/123456789012/jobs.fifo";
    conf_check(&given, "region", "us-east-1", "queue.amazonaws.com is us-east-1");

    put_file("home/.aws/config", "[default]\nregion = eu-north-1\n"
                                 "[profile dev]\nregion = us-west-2\n");
    conf_check(&given, "region", "eu-north-1", "the profile's region wins over the URL");
    given.profile = "dev";
    conf_check(&given, "region", "us-west-2", "the given profile's region");
    given.profile = NULL;
    given.env_file = put_file("region.env", "AWS_PROFILE=dev\n");
    conf_check(&given, "region", "us-west-2", "AWS_PROFILE from .env selects the profile");

    setenv("AWS_DEFAULT_REGION", "ca-central-1", 1);
    conf_check(&given, "region", "ca-central-1", "AWS_DEFAULT_REGION wins over the profile");
    given.env_file = put_file("region.env", "AWS_REGION=sa-east-1\n");
    conf_check(&given, "region", "sa-east-1", "AWS_REGION in .env wins over DEFAULT_REGION");
    setenv("AWS_REGION", "me-south-1", 1);
    conf_check(&given, "region", "me-south-1", "AWS_REGION in the environment wins over .env");
    given.region = "af-south-1";
    conf_check(&given, "region", "af-south-1", "the given region wins over everything");
    given.region = "";
    conf_check(&given, "region", "me-south-1", "an empty given region counts as unset");
}

static void test_region_missing(void)
{
    rq_aws_conf_t given = { 0 }, out;
    const char *err = NULL;
    apr_status_t rv;

    env_reset();
    drop_file("home/.aws/config");
    given.queue_url = "http://127.0.0.1:9324/000000000000/jobs.fifo";
    rv = rq_aws_conf_resolve_ex(&out, &err, pool, &given);
    RQ_IS_INT(rv, RQ_CREDS_ENOREGION, "no region anywhere: RQ_CREDS_ENOREGION");
    RQ_OK(err && strstr(err, "no AWS region is set") && strstr(err, "RaceQRegion")
          && strstr(err, "AWS_REGION"), "the error says how to set one: %s", err);
    rv = rq_aws_conf_resolve_for(&out, &err, pool, &given, "--region");
    RQ_IS_INT(rv, RQ_CREDS_ENOREGION, "resolve_for: RQ_CREDS_ENOREGION");
    RQ_OK(err && strstr(err, "give --region, set AWS_REGION") && !strstr(err, "RaceQRegion")
          && !strstr(err, "raceqd"), "naming the caller's own option only: %s", err);

    put_file("home/.aws/config", "[default]\nregion\n");
    rv = rq_aws_conf_resolve_ex(&out, &err, pool, &given);
    RQ_IS_INT(rv, RQ_CREDS_EBADFILE, "a malformed config file is an error when read");
    RQ_OK(err && strstr(err, ".aws/config:2:"), "naming file and line: %s", err);
    drop_file("home/.aws/config");

    rq_log_set(log_capture, log_all, NULL);
    rv = rq_aws_conf_resolve(&out, pool, &given);
    rq_log_set(NULL, NULL, NULL);
    RQ_IS_INT(rv, RQ_CREDS_ENOREGION, "rq_aws_conf_resolve fails the same way");
    RQ_OK(strstr(logbuf, "RQ04001: no AWS region is set"), "and logs why");
}

static void test_endpoint(void)
{
    rq_aws_conf_t given = { 0 };

    env_reset();
    given.region = "eu-west-1";
    conf_check(&given, "endpoint", "https://sqs.eu-west-1.amazonaws.com",
               "default endpoint from the region");
    given.region = "cn-north-1";
    conf_check(&given, "endpoint", "https://sqs.cn-north-1.amazonaws.com.cn",
               "China regions use amazonaws.com.cn");
    given.region = "eu-west-1";

    given.queue_url = "http://127.0.0.1:9324/000000000000/jobs.fifo";
    conf_check(&given, "endpoint", "http://127.0.0.1:9324", "endpoint from the queue URL");
    given.queue_url = "https://sqs.eu-west-1.amazonaws.com/123456789012/jobs.fifo";
    conf_check(&given, "endpoint", "https://sqs.eu-west-1.amazonaws.com",
               "endpoint from an AWS queue URL drops the path");
    given.queue_url = "http://[::1]:9324/000000000000/jobs.fifo";
    conf_check(&given, "endpoint", "http://[::1]:9324", "an IPv6 queue URL");

    setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:4566/", 1);
    conf_check(&given, "endpoint", "http://127.0.0.1:4566",
               "AWS_ENDPOINT_URL wins over the queue URL (trailing / dropped)");
    given.env_file = put_file("ep.env", "AWS_ENDPOINT_URL_SQS=http://localhost:9400\n");
    conf_check(&given, "endpoint", "http://localhost:9400",
               "AWS_ENDPOINT_URL_SQS (.env) wins over AWS_ENDPOINT_URL");
    given.endpoint = "http://127.0.0.1:1234";
    conf_check(&given, "endpoint", "http://127.0.0.1:1234", "the given endpoint wins");
}

static void test_bad_urls(void)
{
    rq_aws_conf_t given = { 0 }, out;
    const char *err = NULL;
    apr_status_t rv;

    env_reset();
    given.region = "eu-west-1";
    given.queue_url = "sqs.eu-west-1.amazonaws.com/123/jobs.fifo";
    rv = rq_aws_conf_resolve_ex(&out, &err, pool, &given);
    RQ_IS_INT(rv, RQ_CREDS_EBADURL, "a queue URL without a scheme is refused");
    RQ_OK(err && strstr(err, "queue URL"), "the error names the setting: %s", err);

    given.queue_url = NULL;
    given.endpoint = "ftp://example.com";
    rv = rq_aws_conf_resolve_ex(&out, &err, pool, &given);
    RQ_IS_INT(rv, RQ_CREDS_EBADURL, "an ftp endpoint is refused");
    RQ_OK(err && strstr(err, "SQS endpoint"), "the error names the setting: %s", err);
}

static void test_queue_and_profile(void)
{
    rq_aws_conf_t given = { 0 }, out;
    const char *err = NULL;
    apr_status_t rv;

    env_reset();
    given.region = "eu-west-1";
    conf_check(&given, "queue_url", NULL, "no queue URL: left unset");
    conf_check(&given, "profile", "default", "no profile: \"default\"");
    rv = rq_aws_conf_resolve_ex(&out, &err, pool, &given);
    rv = rq_aws_conf_require_queue(&err, pool, &out);
    RQ_IS_INT(rv, RQ_CREDS_ENOQUEUE, "a queue is required: RQ_CREDS_ENOQUEUE");
    RQ_OK(err && strstr(err, "RaceQQueueURL") && strstr(err, "AWS_FIFO_URL"),
          "the error says how to set one: %s", err);

    given.env_file = put_file("queue.env", "AWS_FIFO_URL=http://127.0.0.1:9/0/from-file.fifo\n"
                                           "AWS_PROFILE=filed\n");
    conf_check(&given, "queue_url", "http://127.0.0.1:9/0/from-file.fifo",
               "AWS_FIFO_URL from .env");
    conf_check(&given, "profile", "filed", "AWS_PROFILE from .env");
    setenv("AWS_FIFO_URL", "http://127.0.0.1:9/0/from-env.fifo", 1);
    setenv("AWS_PROFILE", "envprof", 1);
    conf_check(&given, "queue_url", "http://127.0.0.1:9/0/from-env.fifo",
               "AWS_FIFO_URL from the environment wins");
    conf_check(&given, "profile", "envprof", "AWS_PROFILE from the environment wins");
    given.queue_url = "http://127.0.0.1:9/0/given.fifo";
    given.profile = "givenprof";
    conf_check(&given, "queue_url", "http://127.0.0.1:9/0/given.fifo", "the given queue wins");
    conf_check(&given, "profile", "givenprof", "the given profile wins");
    rv = rq_aws_conf_resolve_ex(&out, &err, pool, &given);
    RQ_IS_INT(rq_aws_conf_require_queue(&err, pool, &out), APR_SUCCESS,
              "with a queue URL, the requirement is met");
}

typedef struct thread_arg_t {
    rq_creds_provider_t *prov;
    int failures;
} thread_arg_t;

static void *APR_THREAD_FUNC thread_get(apr_thread_t *t, void *data)
{
    thread_arg_t *arg = data;
    apr_pool_t *p;
    rq_creds_t c;
    int i;

    apr_pool_create_unmanaged_ex(&p, NULL, NULL);
    for (i = 0; i < 200; i++) {
        if (rq_creds_get(&c, p, arg->prov) != APR_SUCCESS
            || strcmp(c.access_key, "AKIDTHREADS00001") != 0) {
            arg->failures++;
        }
        apr_pool_clear(p);
    }
    apr_pool_destroy(p);
    apr_thread_exit(t, APR_SUCCESS);
    return NULL;
}

static void test_threads(void)
{
    rq_aws_conf_t given = { 0 };
    thread_arg_t args[4];
    apr_thread_t *threads[4];
    rq_creds_provider_t *prov;
    apr_status_t rv;
    int i, failures = 0;

    env_reset();
    setenv("AWS_ACCESS_KEY_ID", "AKIDTHREADS00001", 1);
    setenv("AWS_SECRET_ACCESS_KEY", "threads/secret", 1);
    rq_creds_provider_create(&prov, pool, &given);
    for (i = 0; i < 4; i++) {
        args[i].prov = prov;
        args[i].failures = 0;
        apr_thread_create(&threads[i], NULL, thread_get, &args[i], pool);
    }
    for (i = 0; i < 4; i++) {
        apr_thread_join(&rv, threads[i]);
        failures += args[i].failures;
    }
    RQ_IS_INT(failures, 0, "four threads sharing one provider all get the credentials");
}

int main(void)
{
    char dir[] = "/tmp/rq-test-creds-XXXXXX";

    apr_initialize();
    apr_pool_create(&pool, NULL);
    if (!mkdtemp(dir)) {
        perror("mkdtemp");
        return 1;
    }
    tmp = dir;

    test_environment();
    test_env_file();
    test_shared_files();
    test_shared_overrides();
    test_none();
    test_caching_and_logs();
    test_region();
    test_region_missing();
    test_endpoint();
    test_bad_urls();
    test_queue_and_profile();
    test_threads();

    if (system(apr_pstrcat(pool, "rm -rf ", dir, NULL)) != 0) {
        printf("# could not remove %s\n", dir);
    }
    apr_pool_destroy(pool);
    apr_terminate();
    return rq_tap_done();
}
