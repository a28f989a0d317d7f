/*
 * The AWS shared credentials and config files (~/.aws/credentials,
 * ~/.aws/config): "[section]" headers and "key = value" lines.
 *
 * Lines starting with "#" or ";" are comments, and so is a "#" or ";" that
 * follows whitespace in a value. Indented lines after a key with an empty
 * value are that key's sub-settings (as in "s3 =" blocks) and are skipped.
 * Keys are compared case-insensitively; a section that appears twice is
 * merged, later keys winning. Anything else is an error reported as
 * "FILE:LINE: reason".
 */
#ifndef RQ_INI_H
#define RQ_INI_H

#include <apr_hash.h>
#include <apr_pools.h>
#include <apr_tables.h>

typedef struct rq_ini_t {
    const char *path;
    apr_hash_t *sections; /* name as written between the brackets, trimmed -> apr_table_t */
} rq_ini_t;

#define RQ_INI_ERR_BASE (APR_OS_START_USERERR + 4200)
#define RQ_INI_ESYNTAX  (RQ_INI_ERR_BASE + 1)

/*
 * Reads the file at path. A missing file is APR_ENOENT; other failures set
 * *perr to a sentence naming the file (and the line for a syntax error).
 */
apr_status_t rq_ini_read(rq_ini_t **pini, const char **perr, apr_pool_t *p, const char *path);

apr_status_t rq_ini_parse(rq_ini_t **pini, const char **perr, apr_pool_t *p, const char *text,
                          apr_size_t len, const char *name);

/* The keys of a section, or NULL when the file has none by that name. */
apr_table_t *rq_ini_section(const rq_ini_t *ini, const char *name);

#endif
