/*
 * .env files and environment lookups.
 *
 * A .env file holds KEY=VALUE lines, as the shell and the common dotenv
 * loaders read them: blank lines and "#" comments are skipped, an "export "
 * prefix is allowed, spaces around the key and value are trimmed. A value is
 * either unquoted (a "#" preceded by whitespace starts a comment), in single
 * quotes (taken literally) or in double quotes (\n, \" and \\ are escapes;
 * any other backslash stays as it is). A value ends at the end of its line.
 * Variables are not expanded. When a key appears twice, the last one wins.
 *
 * A line that is none of these is an error, reported as "FILE:LINE: reason".
 */
#ifndef RQ_ENV_H
#define RQ_ENV_H

#include <apr_pools.h>
#include <apr_hash.h>

/* A parsed .env file. */
typedef struct rq_env_t {
    const char *path;  /* as given, for messages */
    apr_hash_t *vars;  /* KEY -> value, both strings; keys are case-sensitive */
} rq_env_t;

/* Status codes beyond APR's for .env files. */
#define RQ_ENV_ERR_BASE (APR_OS_START_USERERR + 4100)
#define RQ_ENV_ESYNTAX  (RQ_ENV_ERR_BASE + 1) /* a line is not KEY=VALUE */

/*
 * Reads and parses the file at path. On failure *perr says why, naming the
 * file (and the line for a syntax error); a missing file is APR_ENOENT.
 */
apr_status_t rq_env_read(rq_env_t **penv, const char **perr, apr_pool_t *p, const char *path);

/* Parses text of len bytes; name is used in error messages. */
apr_status_t rq_env_parse(rq_env_t **penv, const char **perr, apr_pool_t *p, const char *text,
                          apr_size_t len, const char *name);

/* Settings files larger than this are refused: they hold settings, not data. */
#define RQ_SETTINGS_FILE_MAX (1024 * 1024)

/*
 * Reads a whole small file into a NUL-terminated buffer from p. A file
 * larger than max is APR_EINVAL.
 */
apr_status_t rq_file_read_all(char **pbuf, apr_size_t *plen, apr_pool_t *p, const char *path,
                              apr_size_t max);

/* The file's own value for key, or NULL (env may be NULL). */
const char *rq_env_file_get(const rq_env_t *env, const char *key);

/*
 * The process environment's value for key, else the file's (env may be
 * NULL). An empty value counts as unset, as the AWS SDKs treat it.
 */
const char *rq_env_get(const rq_env_t *env, const char *key);

#endif
