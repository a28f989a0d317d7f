/*
 * Logging for lib/: every line goes through one callback, so that the module
 * can send it to httpd's error log under its own module index (and honour
 * "LogLevel raceq:..."), while the daemon and the tools write to stderr.
 *
 * Levels are httpd's (RQ_LOG_EMERG = APLOG_EMERG ... RQ_LOG_TRACE8 =
 * APLOG_TRACE8). Messages at debug and above begin with a unique tag
 * "RQnnnnn:" so that a line can be found in the source. Secrets never reach a
 * log line: pass them through rq_log_mask() if a value must be shown at all.
 */
#ifndef RQ_LOG_H
#define RQ_LOG_H

#include <apr_pools.h>
#include <apr_errno.h>

enum {
    RQ_LOG_EMERG = 0,
    RQ_LOG_ALERT,
    RQ_LOG_CRIT,
    RQ_LOG_ERR,
    RQ_LOG_WARNING,
    RQ_LOG_NOTICE,
    RQ_LOG_INFO,
    RQ_LOG_DEBUG,
    RQ_LOG_TRACE1,
    RQ_LOG_TRACE2,
    RQ_LOG_TRACE3,
    RQ_LOG_TRACE4,
    RQ_LOG_TRACE5,
    RQ_LOG_TRACE6,
    RQ_LOG_TRACE7,
    RQ_LOG_TRACE8
};

#define RQ_LOG_MARK __FILE__, __LINE__

/* Receives one formatted line; rv is APR_SUCCESS when no status applies. */
typedef void rq_log_fn(void *baton, const char *file, int line, int level, apr_status_t rv,
                       const char *msg);

/* Asks whether a level is enabled, so that costly messages can be skipped. */
typedef int rq_log_level_fn(void *baton, int level);

/* Points every later log call at the given callbacks (NULL restores stderr). */
void rq_log_set(rq_log_fn *fn, rq_log_level_fn *level_fn, void *baton);

/* Sets the highest level the default stderr logger prints. */
void rq_log_set_level(int level);

/* Parses "emerg".."debug", "trace1".."trace8"; returns -1 when unknown. */
int rq_log_level_parse(const char *name);

int rq_log_is_level(int level);

void rq_log_perror(const char *file, int line, int level, apr_status_t rv, apr_pool_t *p,
                   const char *fmt, ...) __attribute__((format(printf, 6, 7)));

/*
 * Texts for the library's own status codes (RQ_*_E*, from APR_OS_START_USERERR
 * on), which apr_strerror() does not know. The codes of lib/ are built in; a
 * module with codes of its own adds a table once, at start-up, before threads
 * log: texts[i] describes base + 1 + i.
 */
apr_status_t rq_strerror_register(apr_status_t base, int count, const char *const *texts);

/* The text for rv: a library code's own text, else apr_strerror()'s. */
const char *rq_strerror(apr_status_t rv, char *buf, apr_size_t size);

/* Returns "AKID****" style: the first four characters, then stars. */
const char *rq_log_mask(apr_pool_t *p, const char *secret);

#endif
