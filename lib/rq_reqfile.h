/*
 * Raw HTTP request files, as AWS's SigV4 test suite writes them and as a
 * user pastes them from a trace: a request line, "Name:value" header lines
 * (obsolete folding allowed), a blank line, then the body. Lines end in LF
 * or CRLF; the last line needs no newline.
 *
 * The request line is "METHOD TARGET VERSION". The target is everything
 * between the first and the last space, so a path with a literal space in
 * it is kept whole.
 */
#ifndef RQ_REQFILE_H
#define RQ_REQFILE_H

#include <apr_pools.h>
#include <apr_tables.h>

#include "rq_sigv4.h"

/* Largest request file read, in bytes. */
#define RQ_REQFILE_MAX (16 * 1024 * 1024)

typedef struct rq_reqfile_t {
    const char *method;
    const char *target;          /* path and query, as on the request line */
    const char *version;         /* "HTTP/1.1" */
    apr_array_header_t *headers; /* of rq_header_t in file order; a folded value keeps
                                    its line breaks and leading white space */
    const char *body;
    apr_size_t body_len;
} rq_reqfile_t;

/*
 * Parses data[0..len). On APR_EINVAL, *perr says what is wrong and on which
 * line, in a sentence fit for a user.
 */
apr_status_t rq_reqfile_parse(rq_reqfile_t **preq, const char **perr, apr_pool_t *p,
                              const char *data, apr_size_t len);

/* Reads and parses the file at path, or standard input when path is "-". */
apr_status_t rq_reqfile_read(rq_reqfile_t **preq, const char **perr, apr_pool_t *p,
                             const char *path);

/* The value of the first header of that name (any case), or NULL. */
const char *rq_reqfile_header_get(const rq_reqfile_t *req, const char *name);

/* Appends a header after the others; the strings must live as long as req. */
void rq_reqfile_header_add(rq_reqfile_t *req, const char *name, const char *value);

/* Fills a signer input that refers to req's fields. */
void rq_reqfile_to_sigv4(rq_sigv4_input_t *in, const rq_reqfile_t *req);

#endif
