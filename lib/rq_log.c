/* Logging through a callback; see rq_log.h. */
#include <stdio.h>
#include <string.h>

#include <apr_strings.h>
#include <apr_time.h>

#include "rq_log.h"

static rq_log_fn *log_fn;
static rq_log_level_fn *log_level_fn;
static void *log_baton;
static int stderr_level = RQ_LOG_NOTICE;

static const char *const level_names[] = {
    "emerg", "alert", "crit", "error", "warn", "notice", "info", "debug",
    "trace1", "trace2", "trace3", "trace4", "trace5", "trace6", "trace7", "trace8"
};

void rq_log_set(rq_log_fn *fn, rq_log_level_fn *level_fn, void *baton)
{
    log_fn = fn;
    log_level_fn = level_fn;
    log_baton = baton;
}

void rq_log_set_level(int level)
{
    stderr_level = level;
}

int rq_log_level_parse(const char *name)
{
    int i;

    for (i = 0; i <= RQ_LOG_TRACE8; i++) {
        if (strcasecmp(name, level_names[i]) == 0) {
            return i;
        }
    }
    if (strcasecmp(name, "warning") == 0) {
        return RQ_LOG_WARNING;
    }
    return -1;
}

int rq_log_is_level(int level)
{
    if (log_level_fn) {
        return log_level_fn(log_baton, level);
    }
    return level <= stderr_level;
}

static void stderr_write(int level, apr_status_t rv, const char *msg)
{
    char stamp[APR_CTIME_LEN];
    char err[256];

    apr_ctime(stamp, apr_time_now());
    if (rv != APR_SUCCESS) {
        apr_strerror(rv, err, sizeof(err));
        fprintf(stderr, "[%s] [raceq:%s] %s: %s\n", stamp, level_names[level], msg, err);
    }
    else {
        fprintf(stderr, "[%s] [raceq:%s] %s\n", stamp, level_names[level], msg);
    }
    fflush(stderr);
}

void rq_log_perror(const char *file, int line, int level, apr_status_t rv, apr_pool_t *p,
                   const char *fmt, ...)
{
    va_list ap;
    const char *msg;

    if (!rq_log_is_level(level)) {
        return;
    }

    va_start(ap, fmt);
    msg = apr_pvsprintf(p, fmt, ap);
    va_end(ap);

    if (log_fn) {
        log_fn(log_baton, file, line, level, rv, msg);
        return;
    }
    stderr_write(level, rv, msg);
}

const char *rq_log_mask(apr_pool_t *p, const char *secret)
{
    if (!secret || !*secret) {
        return "(none)";
    }
    if (strlen(secret) <= 8) {
        return "****";
    }
    return apr_pstrcat(p, apr_pstrndup(p, secret, 4), "****", NULL);
}
