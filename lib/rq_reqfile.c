/* Raw HTTP request files; see rq_reqfile.h. */
#include <string.h>

#include <apr_file_io.h>
#include <apr_strings.h>

#include "rq_reqfile.h"

/* A cursor over the lines of the file. */
typedef struct line_reader_t {
    const char *data;
    apr_size_t len;
    apr_size_t pos;
    int lineno;
} line_reader_t;

/* Returns the next line without its LF or CRLF; 0 at the end of the data. */
static int line_next(const char **pline, apr_size_t *plen, line_reader_t *r)
{
    const char *start = r->data + r->pos;
    const char *nl;
    apr_size_t n;

    if (r->pos >= r->len) {
        return 0;
    }
    nl = memchr(start, '\n', r->len - r->pos);
    n = nl ? (apr_size_t)(nl - start) : r->len - r->pos;
    r->pos += n + (nl ? 1 : 0);
    r->lineno++;
    if (n > 0 && start[n - 1] == '\r') {
        n--;
    }
    *pline = start;
    *plen = n;
    return 1;
}

static int is_tchar(char c)
{
    return c > ' ' && c < 127 && !strchr("\"(),/:;<=>?@[\\]{}", c);
}

static int is_token(const char *s, apr_size_t len)
{
    apr_size_t i;

    for (i = 0; i < len; i++) {
        if (!is_tchar(s[i])) {
            return 0;
        }
    }
    return len > 0;
}

static apr_status_t request_line_parse(rq_reqfile_t *req, const char **perr, apr_pool_t *p,
                                       const char *line, apr_size_t len)
{
    const char *sp1 = memchr(line, ' ', len);
    const char *sp2 = memrchr(line, ' ', len);

    if (!sp1 || sp2 - sp1 < 2) {
        *perr = "line 1: the request line must be METHOD TARGET HTTP/VERSION";
        return APR_EINVAL;
    }
    if (!is_token(line, (apr_size_t)(sp1 - line))) {
        *perr = "line 1: the method is not a valid HTTP token";
        return APR_EINVAL;
    }
    if (line + len - sp2 < 6 || strncmp(sp2 + 1, "HTTP/", 5) != 0) {
        *perr = "line 1: the request line does not end with an HTTP version (HTTP/1.1)";
        return APR_EINVAL;
    }

    req->method = apr_pstrndup(p, line, (apr_size_t)(sp1 - line));
    req->target = apr_pstrndup(p, sp1 + 1, (apr_size_t)(sp2 - sp1 - 1));
    req->version = apr_pstrndup(p, sp2 + 1, (apr_size_t)(line + len - sp2 - 1));
    return APR_SUCCESS;
}

static apr_status_t header_line_parse(rq_reqfile_t *req, const char **perr, apr_pool_t *p,
                                      const char *line, apr_size_t len, int lineno)
{
    const char *colon = memchr(line, ':', len);
    rq_header_t *h;

    if (line[0] == ' ' || line[0] == '\t') {
        if (req->headers->nelts == 0) {
            *perr = apr_psprintf(p, "line %d: a folded line comes before any header", lineno);
            return APR_EINVAL;
        }
        h = &APR_ARRAY_IDX(req->headers, req->headers->nelts - 1, rq_header_t);
        h->value = apr_pstrcat(p, h->value, "\n", apr_pstrndup(p, line, len), NULL);
        return APR_SUCCESS;
    }
    if (!colon || !is_token(line, (apr_size_t)(colon - line))) {
        *perr = apr_psprintf(p, "line %d: a header line must be Name:value with a valid "
                             "name", lineno);
        return APR_EINVAL;
    }

    h = apr_array_push(req->headers);
    h->name = apr_pstrndup(p, line, (apr_size_t)(colon - line));
    h->value = apr_pstrndup(p, colon + 1, (apr_size_t)(line + len - colon - 1));
    return APR_SUCCESS;
}

apr_status_t rq_reqfile_parse(rq_reqfile_t **preq, const char **perr, apr_pool_t *p,
                              const char *data, apr_size_t len)
{
    rq_reqfile_t *req = apr_pcalloc(p, sizeof(*req));
    line_reader_t r = { data, len, 0, 0 };
    const char *line;
    apr_size_t n;
    apr_status_t rv;

    *perr = NULL;
    req->headers = apr_array_make(p, 8, sizeof(rq_header_t));
    if (!line_next(&line, &n, &r) || n == 0) {
        *perr = "line 1: the file does not start with a request line";
        return APR_EINVAL;
    }
    rv = request_line_parse(req, perr, p, line, n);

    while (rv == APR_SUCCESS && line_next(&line, &n, &r) && n > 0) {
        if (memchr(line, '\0', n)) {
            *perr = apr_psprintf(p, "line %d: a header line holds a NUL byte", r.lineno);
            return APR_EINVAL;
        }
        rv = header_line_parse(req, perr, p, line, n, r.lineno);
    }
    if (rv != APR_SUCCESS) {
        return rv;
    }

    req->body_len = len - r.pos;
    req->body = apr_pmemdup(p, data + r.pos, req->body_len + 1);
    ((char *)req->body)[req->body_len] = '\0';
    *preq = req;
    return APR_SUCCESS;
}

static apr_status_t file_slurp(char **pdata, apr_size_t *plen, apr_file_t *f, apr_pool_t *p)
{
    apr_size_t cap = 8192, len = 0;
    char *buf = apr_palloc(p, cap + 1);
    apr_status_t rv = APR_SUCCESS;

    while (rv == APR_SUCCESS) {
        apr_size_t n = cap - len;

        rv = apr_file_read(f, buf + len, &n);
        len += n;
        if (len > RQ_REQFILE_MAX) {
            return APR_ENOSPC;
        }
        if (rv == APR_SUCCESS && len == cap) {
            char *bigger = apr_palloc(p, cap * 2 + 1);

            memcpy(bigger, buf, len);
            buf = bigger;
            cap *= 2;
        }
    }
    if (rv != APR_EOF) {
        return rv;
    }
    buf[len] = '\0';
    *pdata = buf;
    *plen = len;
    return APR_SUCCESS;
}

apr_status_t rq_reqfile_read(rq_reqfile_t **preq, const char **perr, apr_pool_t *p,
                             const char *path)
{
    apr_file_t *f;
    char *data, err[256];
    apr_size_t len;
    apr_status_t rv;

    if (strcmp(path, "-") == 0) {
        rv = apr_file_open_stdin(&f, p);
    }
    else {
        rv = apr_file_open(&f, path, APR_FOPEN_READ | APR_FOPEN_BINARY, APR_OS_DEFAULT, p);
    }
    if (rv == APR_SUCCESS) {
        rv = file_slurp(&data, &len, f, p);
        apr_file_close(f);
    }
    if (rv == APR_ENOSPC) {
        *perr = apr_psprintf(p, "%s: larger than %d bytes", path, RQ_REQFILE_MAX);
        return rv;
    }
    if (rv != APR_SUCCESS) {
        *perr = apr_psprintf(p, "%s: %s", path, apr_strerror(rv, err, sizeof(err)));
        return rv;
    }
    return rq_reqfile_parse(preq, perr, p, data, len);
}

const char *rq_reqfile_header_get(const rq_reqfile_t *req, const char *name)
{
    int i;

    for (i = 0; i < req->headers->nelts; i++) {
        const rq_header_t *h = &APR_ARRAY_IDX(req->headers, i, rq_header_t);

        if (strcasecmp(h->name, name) == 0) {
            return h->value;
        }
    }
    return NULL;
}

void rq_reqfile_header_add(rq_reqfile_t *req, const char *name, const char *value)
{
    rq_header_t *h = apr_array_push(req->headers);

    h->name = name;
    h->value = value;
}

void rq_reqfile_to_sigv4(rq_sigv4_input_t *in, const rq_reqfile_t *req)
{
    in->method = req->method;
    in->uri = req->target;
    in->headers = req->headers;
    in->body = req->body;
    in->body_len = req->body_len;
}
