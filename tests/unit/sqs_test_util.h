/*
 * Helpers shared by the SQS client's tests: test credentials in the
 * environment, and starting a Node.js server script from tests/ (the fauxqs
 * emulator or the JSON-protocol stand-in) on a free loopback port.
 */
#ifndef SQS_TEST_UTIL_H
#define SQS_TEST_UTIL_H

#include <errno.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <apr_strings.h>

#include "rq_log.h"
#include "rq_sqs.h"

#define SQS_TEST_ACCESS_KEY "AKIDRACEQTEST0000000"
#define SQS_TEST_SECRET     "raceq/test/secret/key/never/logged/0000"
#define SQS_TEST_TOKEN      "raceq-test-session-token-never-logged"

extern char **environ;

/*
 * Log capture: what the library logs at notice and above is kept, as
 * "[level] message" lines, for the test to assert on, instead of going to
 * stderr where an expected error looks like a failure.
 */
typedef struct sqs_test_log_t {
    char text[8192];
    size_t len;
} sqs_test_log_t;

static inline sqs_test_log_t *sqs_test_log_state(void)
{
    static sqs_test_log_t log;

    return &log;
}

static inline void sqs_test_log_line(void *baton, const char *file, int line, int level,
                                     apr_status_t rv, const char *msg)
{
    static const char *const names[] = { "emerg", "alert", "crit", "error", "warn", "notice" };
    sqs_test_log_t *log = sqs_test_log_state();
    size_t room = sizeof(log->text) - log->len;
    int n;

    (void)baton, (void)file, (void)line, (void)rv;
    if (level > RQ_LOG_NOTICE || room <= 1) {
        return;
    }
    n = snprintf(log->text + log->len, room, "[%s] %s\n", names[level], msg);
    if (n > 0) {
        log->len += (size_t)n < room ? (size_t)n : room - 1;
    }
}

static inline int sqs_test_log_enabled(void *baton, int level)
{
    (void)baton;
    return level <= RQ_LOG_NOTICE;
}

static inline void sqs_test_log_capture(void)
{
    rq_log_set(sqs_test_log_line, sqs_test_log_enabled, NULL);
}

/* The lines captured since the last call; forgets them. */
static inline const char *sqs_test_log_take(apr_pool_t *p)
{
    sqs_test_log_t *log = sqs_test_log_state();
    const char *text = apr_pstrmemdup(p, log->text, log->len);

    log->len = 0;
    return text;
}

/* Credentials the emulator accepts (it checks no signature), from the environment. */
static inline void sqs_test_env(int with_token)
{
    setenv("AWS_ACCESS_KEY_ID", SQS_TEST_ACCESS_KEY, 1);
    setenv("AWS_SECRET_ACCESS_KEY", SQS_TEST_SECRET, 1);
    if (with_token) {
        setenv("AWS_SESSION_TOKEN", SQS_TEST_TOKEN, 1);
    }
    else {
        unsetenv("AWS_SESSION_TOKEN");
    }
    setenv("AWS_REGION", "us-east-1", 1);
    setenv("AWS_EC2_METADATA_DISABLED", "true", 1);
    setenv("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent/raceq-test-credentials", 1);
    setenv("AWS_CONFIG_FILE", "/nonexistent/raceq-test-config", 1);
    unsetenv("AWS_PROFILE");
    unsetenv("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI");
    unsetenv("AWS_CONTAINER_CREDENTIALS_FULL_URI");
}

/* The source tree's top, from argv[0] ".../tests/unit/bin/test_x". */
static inline const char *sqs_test_top(apr_pool_t *p, const char *argv0)
{
    char *top = apr_pstrdup(p, argv0);
    char *cut = strstr(top, "tests/unit/bin/");

    if (!cut) {
        return ".";
    }
    if (cut == top) {
        return ".";
    }
    cut[-1] = '\0';
    return top;
}

typedef struct sqs_test_server_t {
    pid_t pid;
    int stdin_fd; /* closing it makes the server exit */
    int port;
} sqs_test_server_t;

/*
 * Starts "node <top>/tests/<script> 0 [arg]" and reads the port it prints.
 * Returns 0 on success.
 */
static inline int sqs_test_server_start(sqs_test_server_t *srv, const char *top,
                                        const char *script,
                                 const char *arg, apr_pool_t *p)
{
    int in[2], out[2];
    posix_spawn_file_actions_t fa;
    char *argv[5];
    char line[64];
    FILE *f;
    int rc;

    memset(srv, 0, sizeof(*srv));
    if (pipe(in) != 0 || pipe(out) != 0) {
        return -1;
    }
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_adddup2(&fa, in[0], 0);
    posix_spawn_file_actions_adddup2(&fa, out[1], 1);
    posix_spawn_file_actions_addclose(&fa, in[1]);
    posix_spawn_file_actions_addclose(&fa, out[0]);
    argv[0] = apr_pstrcat(p, top, "/tests/.node/node_modules/.bin/node", NULL);
    if (access(argv[0], X_OK) != 0) {
        argv[0] = "node"; /* no Node.js in tests/.node: the one in PATH */
    }
    argv[1] = apr_pstrcat(p, top, "/tests/", script, NULL);
    argv[2] = "0";
    argv[3] = (char *)arg;
    argv[4] = NULL;
    rc = posix_spawnp(&srv->pid, argv[0], &fa, NULL, argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    close(in[0]);
    close(out[1]);
    if (rc != 0) {
        close(in[1]);
        close(out[0]);
        return -1;
    }
    srv->stdin_fd = in[1];

    f = fdopen(out[0], "r");
    if (!f || !fgets(line, sizeof(line), f)) {
        if (f) {
            fclose(f);
        }
        return -1;
    }
    fclose(f);
    srv->port = atoi(line);
    return srv->port > 0 ? 0 : -1;
}

static inline void sqs_test_server_stop(sqs_test_server_t *srv)
{
    int status;

    if (srv->pid <= 0) {
        return;
    }
    kill(srv->pid, SIGTERM);
    close(srv->stdin_fd);
    while (waitpid(srv->pid, &status, 0) < 0 && errno == EINTR) {
    }
    srv->pid = 0;
}

/* A client of the server on 127.0.0.1:port, with test credentials. */
static inline apr_status_t sqs_test_client(rq_sqs_t **psqs, apr_pool_t *p, int port,
                                    rq_sqs_opts_t *opts)
{
    rq_sqs_opts_t o;

    if (!opts) {
        memset(&o, 0, sizeof(o));
        opts = &o;
    }
    opts->endpoint = apr_psprintf(p, "http://127.0.0.1:%d", port);
    opts->region = "us-east-1";
    return rq_sqs_create(psqs, p, opts);
}

#endif
