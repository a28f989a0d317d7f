/* Logging through a callback; see rq_log.h. */
#include <stdio.h>
#include <string.h>

#include <apr_strings.h>
#include <apr_time.h>

#include "rq_creds.h"
#include "rq_env.h"
#include "rq_fifo.h"
#include "rq_ini.h"
#include "rq_log.h"
#include "rq_payload.h"
#include "rq_sqs.h"
#include "rq_store.h"
#include "rq_wait.h"

static rq_log_fn *log_fn;
static rq_log_level_fn *log_level_fn;
static void *log_baton;
static int stderr_level = RQ_LOG_NOTICE;

static const char *const level_names[] = {
    "emerg", "alert", "crit", "error", "warn", "notice", "info", "debug",
    "trace1", "trace2", "trace3", "trace4", "trace5", "trace6", "trace7", "trace8"
};

/* --- texts of the library's status codes ---------------------------------- */

typedef struct strerror_table_t {
    apr_status_t base;
    int count;
    const char *const *texts;
} strerror_table_t;

static const char *const payload_texts[] = {
    "the request body was refused",
};

static const char *const store_texts[] = {
    "a statement of the store failed",
    "the store cannot be opened",
    "the req_id has already been applied",
};

static const char *const sqs_texts[] = {
    "SQS refused the request",
    "SQS throttled every attempt",
    "SQS failed with a server error on every attempt",
    "SQS could not be reached",
    "the SQS queue does not exist",
    "SQS sent a malformed reply or a wrong MD5 digest",
    "the request is invalid and was not sent",
    "no AWS credentials could be found",
    "some entries of an SQS batch failed",
};

static const char *const creds_texts[] = {
    "no AWS region is set",
    "no SQS queue URL is set",
    "a queue URL or endpoint is not a valid URL",
    "no AWS credentials were found",
    "the container or instance credentials endpoint failed",
    "a .env or AWS shared file is malformed",
};

static const char *const env_texts[] = {
    "a .env line is not KEY=VALUE",
};

static const char *const ini_texts[] = {
    "a line of an AWS shared file is malformed",
};

static const char *const wait_texts[] = {
    "raceqd sent a malformed or oversized frame",
    "the other end of the wait channel closed it",
    "raceqd's socket accepted no connection",
};

static const char *const fifo_texts[] = {
    "raceqd is not reachable",
    "the req_id is known with another body",
    "the message could not be sent to SQS",
    "no answer came in time; the write is queued",
    "raceqd stopped while the request waited; the write is queued",
    "raceqd answered something malformed",
};

#define TABLE(base, texts) { (base), (int)(sizeof(texts) / sizeof((texts)[0])), (texts) }
#define STRERROR_TABLES_MAX 16

static strerror_table_t strerror_tables[STRERROR_TABLES_MAX] = {
    TABLE(RQ_PAYLOAD_ERR_BASE, payload_texts),
    TABLE(RQ_STORE_ERR_BASE, store_texts),
    TABLE(RQ_SQS_ERR_BASE, sqs_texts),
    TABLE(RQ_CREDS_ERR_BASE, creds_texts),
    TABLE(RQ_ENV_ERR_BASE, env_texts),
    TABLE(RQ_INI_ERR_BASE, ini_texts),
    TABLE(RQ_WAIT_ERR_BASE, wait_texts),
    TABLE(RQ_FIFO_ERR_BASE, fifo_texts),
};
static int strerror_count = 8;

apr_status_t rq_strerror_register(apr_status_t base, int count, const char *const *texts)
{
    int i;

    for (i = 0; i < strerror_count; i++) {
        if (strerror_tables[i].base == base) {
            strerror_tables[i].count = count;
            strerror_tables[i].texts = texts;
            return APR_SUCCESS;
        }
    }
    if (strerror_count == STRERROR_TABLES_MAX) {
        return APR_ENOSPC;
    }
    strerror_tables[strerror_count].base = base;
    strerror_tables[strerror_count].count = count;
    strerror_tables[strerror_count].texts = texts;
    strerror_count++;
    return APR_SUCCESS;
}

const char *rq_strerror(apr_status_t rv, char *buf, apr_size_t size)
{
    int i;

    for (i = 0; i < strerror_count; i++) {
        const strerror_table_t *t = &strerror_tables[i];

        if (rv > t->base && rv <= t->base + t->count) {
            return t->texts[rv - t->base - 1];
        }
    }
    return apr_strerror(rv, buf, size);
}

/* --- the logger ------------------------------------------------------------ */

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
        fprintf(stderr, "[%s] [raceq:%s] %s: %s\n", stamp, level_names[level], msg,
                rq_strerror(rv, err, sizeof(err)));
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
