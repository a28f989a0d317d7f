/*
 * The container (ECS) and instance metadata (IMDSv2) credential sources,
 * against tests/creds-stub.pl on loopback, reached through the standard
 * override variables: the token flow, expiry and refresh, a refresh that
 * fails while the old credentials are valid, several threads, a hanging and
 * a stopped endpoint. No secret may appear in any log line.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <apr_general.h>
#include <apr_strings.h>
#include <apr_thread_proc.h>
#include <curl/curl.h>

#include "rq_creds.h"
#include "rq_log.h"
#include "rq_tap.h"

#define ECS_TOKEN "ecs-auth-token-Zq81x"

static apr_pool_t *pool;
static const char *tmp;
static char base[64];
static pid_t stub_pid;
static char logbuf[256 * 1024];
static apr_thread_mutex_t *log_lock;

static const char *const aws_vars[] = {
    "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE",
    "AWS_REGION", "AWS_CONFIG_FILE", "AWS_SHARED_CREDENTIALS_FILE",
    "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI", "AWS_CONTAINER_CREDENTIALS_FULL_URI",
    "AWS_CONTAINER_AUTHORIZATION_TOKEN", "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE",
    "AWS_EC2_METADATA_SERVICE_ENDPOINT", "AWS_EC2_METADATA_SERVICE_ENDPOINT_MODE",
    "AWS_EC2_METADATA_DISABLED", NULL
};

static void log_capture(void *baton, const char *file, int line, int level, apr_status_t rv,
                        const char *msg)
{
    (void)baton;
    (void)file;
    (void)line;
    (void)level;
    (void)rv;
    apr_thread_mutex_lock(log_lock);
    strncat(logbuf, msg, sizeof(logbuf) - strlen(logbuf) - 2);
    strcat(logbuf, "\n");
    apr_thread_mutex_unlock(log_lock);
}

static int log_all(void *baton, int level)
{
    (void)baton;
    (void)level;
    return 1;
}

static void env_reset(void)
{
    int i;

    for (i = 0; aws_vars[i]; i++) {
        unsetenv(aws_vars[i]);
    }
    setenv("HOME", tmp, 1);
}

/* Starts the stand-in; returns 0 when it listens. */
static int stub_start(const char *argv0)
{
    const char *script = apr_pstrcat(pool, apr_pstrndup(pool, argv0, strrchr(argv0, '/')
                                                        ? (apr_size_t)(strrchr(argv0, '/')
                                                                       - argv0) : 1),
                                     "/../../creds-stub.pl", NULL);
    char line[64] = "";
    int fds[2], port = 0;
    FILE *f;

    if (pipe(fds) != 0) {
        return -1;
    }
    stub_pid = fork();
    if (stub_pid == 0) {
        dup2(fds[1], 1);
        close(fds[0]);
        execlp("perl", "perl", script, "--ecs-token", ECS_TOKEN, (char *)NULL);
        _exit(127);
    }
    close(fds[1]);
    f = fdopen(fds[0], "r");
    if (!f || !fgets(line, sizeof(line), f) || sscanf(line, "PORT %d", &port) != 1) {
        return -1;
    }
    fclose(f);
    snprintf(base, sizeof(base), "http://127.0.0.1:%d", port);
    return 0;
}

static void stub_stop(void)
{
    int status;

    if (stub_pid > 0) {
        kill(stub_pid, SIGTERM);
        waitpid(stub_pid, &status, 0);
        stub_pid = 0;
    }
}

static size_t keep_body(char *data, size_t size, size_t n, void *baton)
{
    char *buf = baton;

    strncat(buf, data, size * n < 255 - strlen(buf) ? size * n : 255 - strlen(buf));
    return size * n;
}

/* A plain GET to the stand-in; returns the status, the body in buf[256]. */
static long stub_get(const char *path, const char *header, char *buf)
{
    struct curl_slist *h = header ? curl_slist_append(NULL, header) : NULL;
    CURL *c = curl_easy_init();
    long status = 0;

    buf[0] = '\0';
    curl_easy_setopt(c, CURLOPT_URL, apr_pstrcat(pool, base, path, NULL));
    curl_easy_setopt(c, CURLOPT_NOPROXY, "*");
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, keep_body);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, buf);
    curl_easy_perform(c);
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
    curl_easy_cleanup(c);
    curl_slist_free_all(h);
    return status;
}

static void stub_set(const char *query)
{
    char buf[256];

    stub_get(apr_pstrcat(pool, "/control/set?", query, NULL), NULL, buf);
}

static int stub_served(void)
{
    char buf[256];
    int served = -1, tokens = -1;

    stub_get("/control/stats", NULL, buf);
    sscanf(buf, "served=%d tokens=%d", &served, &tokens);
    return served;
}

static rq_creds_provider_t *provider(apr_interval_time_t margin)
{
    rq_aws_conf_t conf = { 0 };
    rq_creds_provider_t *prov = NULL;
    rq_creds_opts_t opts;
    const char *err = NULL;

    rq_creds_opts_default(&opts);
    opts.refresh_margin = margin;
    opts.retry_interval = 0;
    opts.timeout = apr_time_from_sec(1);
    if (rq_creds_provider_create_ex(&prov, &err, pool, &conf, &opts) != APR_SUCCESS) {
        printf("# %s\n", err);
    }
    return prov;
}

static int is_stub_key(const rq_creds_t *c)
{
    return c->access_key && strncmp(c->access_key, "ASIASTUB", 8) == 0 && c->secret_key
           && strncmp(c->secret_key, "stub/secret/", 12) == 0 && c->session_token
           && strncmp(c->session_token, "stub-session-token-", 19) == 0;
}

static void test_container(void)
{
    rq_creds_t c;
    const char *err = NULL;
    apr_time_t now = apr_time_now();
    apr_status_t rv;

    env_reset();
    stub_set("expiry=3600&fail=0&hang=0");
    setenv("AWS_CONTAINER_CREDENTIALS_FULL_URI", apr_pstrcat(pool, base, "/ecs/creds", NULL), 1);
    setenv("AWS_CONTAINER_AUTHORIZATION_TOKEN", ECS_TOKEN, 1);
    rv = rq_creds_get_ex(&c, &err, pool, provider(apr_time_from_sec(300)));
    RQ_IS_INT(rv, APR_SUCCESS, "container: credentials from the full URI with a token");
    if (err) {
        printf("# %s\n", err);
    }
    RQ_OK(is_stub_key(&c), "container: key, secret and token as served");
    RQ_OK(c.expires > now + apr_time_from_sec(3500) && c.expires < now + apr_time_from_sec(3700),
          "container: Expiration is read (about an hour ahead)");
    RQ_OK(c.source && strstr(c.source, "container credentials at "), "container: source %s",
          c.source);

    setenv("AWS_CONTAINER_AUTHORIZATION_TOKEN", "wrong-token-Hh3k", 1);
    rv = rq_creds_get_ex(&c, &err, pool, provider(apr_time_from_sec(300)));
    RQ_IS_INT(rv, RQ_CREDS_EFETCH, "container: a wrong token is refused");
    RQ_OK(err && strstr(err, "answered HTTP 401"), "container: the error says 401: %s", err);
    RQ_OK(err && !strstr(err, "wrong-token-Hh3k"), "container: the token is not in the error");

    {
        const char *path = apr_pstrcat(pool, tmp, "/ecs-token", NULL);
        FILE *f = fopen(path, "w");

        fputs(ECS_TOKEN "\n", f);
        fclose(f);
        setenv("AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE", path, 1);
    }
    rv = rq_creds_get_ex(&c, &err, pool, provider(apr_time_from_sec(300)));
    RQ_IS_INT(rv, APR_SUCCESS, "container: the token file wins over the token variable");

    setenv("AWS_CONTAINER_CREDENTIALS_FULL_URI", "http://192.0.2.10/creds", 1);
    rv = rq_creds_get_ex(&c, &err, pool, provider(apr_time_from_sec(300)));
    RQ_IS_INT(rv, RQ_CREDS_EFETCH, "container: plain http to a remote host is refused");
    RQ_OK(err && strstr(err, "plain http is only allowed to loopback"), "container: %s", err);
}

static void test_imds(void)
{
    rq_creds_t c;
    const char *err = NULL;
    char buf[256];
    apr_status_t rv;

    env_reset();
    stub_set("expiry=3600&fail=0&hang=0");
    setenv("AWS_EC2_METADATA_SERVICE_ENDPOINT", apr_pstrcat(pool, base, "/", NULL), 1);
    RQ_IS_INT(stub_get("/latest/meta-data/iam/security-credentials/", NULL, buf), 401,
              "imds stand-in: a GET without a token is refused, as IMDSv2 does");

    rv = rq_creds_get_ex(&c, &err, pool, provider(apr_time_from_sec(300)));
    RQ_IS_INT(rv, APR_SUCCESS, "imds: credentials through the token flow");
    if (err) {
        printf("# %s\n", err);
    }
    RQ_OK(is_stub_key(&c), "imds: key, secret and token as served");
    RQ_OK(c.source && strstr(c.source, "instance metadata role raceq-role"),
          "imds: source names the role: %s", c.source);

    setenv("AWS_EC2_METADATA_DISABLED", "TRUE", 1);
    rv = rq_creds_get_ex(&c, &err, pool, provider(apr_time_from_sec(300)));
    RQ_IS_INT(rv, RQ_CREDS_ENONE, "imds: AWS_EC2_METADATA_DISABLED turns it off");
    RQ_OK(err && strstr(err, "disabled by AWS_EC2_METADATA_DISABLED"), "imds: %s", err);
}

static void test_refresh(void)
{
    rq_creds_provider_t *prov;
    rq_creds_t a, b, c, d;
    const char *err = NULL;
    int served;

    env_reset();
    setenv("AWS_EC2_METADATA_SERVICE_ENDPOINT", base, 1);
    stub_set("expiry=120&fail=0&hang=0");
    prov = provider(apr_time_from_sec(300));
    rq_creds_get_ex(&a, &err, pool, prov);
    served = stub_served();
    RQ_IS_INT(rq_creds_get_ex(&b, &err, pool, prov), APR_SUCCESS, "refresh: second get");
    RQ_OK(a.access_key && b.access_key && strcmp(a.access_key, b.access_key) != 0,
          "refresh: credentials within the margin of their expiry are fetched again");
    RQ_IS_INT(stub_served(), served + 1, "refresh: one more fetch");

    stub_set("expiry=3600");
    rq_creds_get_ex(&c, &err, pool, prov);
    served = stub_served();
    rq_creds_get_ex(&d, &err, pool, prov);
    RQ_IS_STR(d.access_key, c.access_key, "refresh: credentials far from expiry are cached");
    RQ_IS_INT(stub_served(), served, "refresh: no fetch for cached credentials");
}

static void test_refresh_failure(void)
{
    rq_creds_provider_t *prov;
    rq_creds_t a, b, c;
    const char *err = NULL;
    apr_status_t rv;
    size_t mark;

    env_reset();
    setenv("AWS_CONTAINER_CREDENTIALS_FULL_URI", apr_pstrcat(pool, base, "/ecs/creds", NULL), 1);
    setenv("AWS_CONTAINER_AUTHORIZATION_TOKEN", ECS_TOKEN, 1);
    stub_set("expiry=120&fail=0&hang=0");
    prov = provider(apr_time_from_sec(300));
    rq_creds_get_ex(&a, &err, pool, prov);

    stub_set("fail=1");
    mark = strlen(logbuf);
    rv = rq_creds_get_ex(&b, &err, pool, prov);
    RQ_IS_INT(rv, APR_SUCCESS, "refresh failure: the old credentials are still returned");
    RQ_IS_STR(b.access_key, a.access_key, "refresh failure: the same key");
    RQ_OK(strstr(logbuf + mark, "RQ04004: refreshing the AWS credentials from container "
                         "credentials") && strstr(logbuf + mark, "answered HTTP 500"),
          "refresh failure: a warning says what failed");

    stub_set("fail=0");
    rq_creds_get_ex(&c, &err, pool, prov);
    RQ_OK(c.access_key && strcmp(c.access_key, a.access_key) != 0,
          "refresh failure: new credentials once the endpoint answers again");
}

typedef struct thread_arg_t {
    rq_creds_provider_t *prov;
    int bad;
} thread_arg_t;

static void *APR_THREAD_FUNC thread_get(apr_thread_t *t, void *data)
{
    thread_arg_t *arg = data;
    apr_pool_t *p;
    rq_creds_t c;
    const char *err;
    int i;

    apr_pool_create_unmanaged_ex(&p, NULL, NULL);
    for (i = 0; i < 25; i++) {
        if (rq_creds_get_ex(&c, &err, p, arg->prov) != APR_SUCCESS || !is_stub_key(&c)) {
            arg->bad++;
        }
        apr_pool_clear(p);
    }
    apr_pool_destroy(p);
    apr_thread_exit(t, APR_SUCCESS);
    return NULL;
}

static void test_threads(void)
{
    thread_arg_t args[4];
    apr_thread_t *threads[4];
    rq_creds_provider_t *prov;
    apr_status_t rv;
    int i, bad = 0;

    env_reset();
    setenv("AWS_EC2_METADATA_SERVICE_ENDPOINT", base, 1);
    stub_set("expiry=120&fail=0&hang=0");
    prov = provider(apr_time_from_sec(300));
    for (i = 0; i < 4; i++) {
        args[i].prov = prov;
        args[i].bad = 0;
        apr_thread_create(&threads[i], NULL, thread_get, &args[i], pool);
    }
    for (i = 0; i < 4; i++) {
        apr_thread_join(&rv, threads[i]);
        bad += args[i].bad;
    }
    RQ_IS_INT(bad, 0, "threads: every get of four threads refreshing at once succeeds");
}

static void test_unreachable(void)
{
    rq_creds_t c;
    const char *err = NULL;
    apr_status_t rv;

    env_reset();
    setenv("AWS_CONTAINER_CREDENTIALS_FULL_URI", apr_pstrcat(pool, base, "/ecs/creds", NULL), 1);
    setenv("AWS_CONTAINER_AUTHORIZATION_TOKEN", ECS_TOKEN, 1);
    stub_set("hang=3");
    rv = rq_creds_get_ex(&c, &err, pool, provider(apr_time_from_sec(300)));
    RQ_IS_INT(rv, RQ_CREDS_EFETCH, "hanging endpoint: an error, not a hang");
    RQ_OK(err && strstr(err, "timed out"), "hanging endpoint: the error says so: %s", err);

    stub_stop();
    rv = rq_creds_get_ex(&c, &err, pool, provider(apr_time_from_sec(300)));
    RQ_IS_INT(rv, RQ_CREDS_EFETCH, "container endpoint down: RQ_CREDS_EFETCH");
    RQ_OK(err && strstr(err, "container credentials: GET http://127.0.0.1:")
          && strstr(err, "connect"), "container endpoint down: clear error: %s", err);

    env_reset();
    setenv("AWS_EC2_METADATA_SERVICE_ENDPOINT", base, 1);
    rv = rq_creds_get_ex(&c, &err, pool, provider(apr_time_from_sec(300)));
    RQ_IS_INT(rv, RQ_CREDS_ENONE, "metadata endpoint down: no credentials");
    RQ_OK(err && strstr(err, "instance metadata: PUT http://127.0.0.1:")
          && strstr(err, "connect"), "metadata endpoint down: listed in the error: %s", err);
}

static void test_no_secrets_logged(void)
{
    RQ_OK(strstr(logbuf, "RQ04003: ") != NULL, "logs: debug lines were captured");
    RQ_OK(!strstr(logbuf, "ASIASTUB0") && !strstr(logbuf, "stub/secret/")
          && !strstr(logbuf, "stub-session-token-") && !strstr(logbuf, "stub-imds-token-")
          && !strstr(logbuf, ECS_TOKEN), "logs: no key id, secret or token at any level");
}

int main(int argc, char **argv)
{
    char dir[] = "/tmp/rq-test-creds-http-XXXXXX";

    (void)argc;
    apr_initialize();
    curl_global_init(CURL_GLOBAL_DEFAULT);
    apr_pool_create(&pool, NULL);
    apr_thread_mutex_create(&log_lock, APR_THREAD_MUTEX_DEFAULT, pool);
    rq_log_set(log_capture, log_all, NULL);
    if (!mkdtemp(dir)) {
        perror("mkdtemp");
        return 1;
    }
    tmp = dir;
    RQ_IS_INT(stub_start(argv[0]), 0, "the stand-in endpoint starts");

    test_container();
    test_imds();
    test_refresh();
    test_refresh_failure();
    test_threads();
    test_unreachable();
    test_no_secrets_logged();

    stub_stop();
    rq_log_set(NULL, NULL, NULL);
    if (system(apr_pstrcat(pool, "rm -rf ", dir, NULL)) != 0) {
        printf("# could not remove %s\n", dir);
    }
    apr_pool_destroy(pool);
    curl_global_cleanup();
    apr_terminate();
    return rq_tap_done();
}
