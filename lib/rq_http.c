/*
 * HTTP exchanges over one libcurl easy handle per client. Keeping the handle
 * keeps its connection cache, so consecutive calls to one endpoint reuse the
 * same TCP (and TLS) connection.
 */
#include <pthread.h>
#include <string.h>

#include <apr_strings.h>
#include <curl/curl.h>

#include "rq_http.h"
#include "rq_log.h"

struct rq_http_t {
    CURL *curl;
    rq_http_call_fn *fn;
    void *baton;
    long connects;
    char errbuf[CURL_ERROR_SIZE];
};

/* What a response is read into while curl runs. */
typedef struct http_sink_t {
    apr_pool_t *p;
    char *buf;
    apr_size_t len;
    apr_size_t cap;
    apr_table_t *headers;
} http_sink_t;

/*
 * The one table from curl's result codes to APR statuses. Codes not listed
 * are APR_EGENERAL and not transient.
 */
static const struct {
    CURLcode code;
    apr_status_t status;
    int transient;
} curl_map[] = {
    { CURLE_OK,                   APR_SUCCESS,      0 },
    { CURLE_UNSUPPORTED_PROTOCOL, APR_ENOTIMPL,     0 },
    { CURLE_URL_MALFORMAT,        APR_EINVAL,       0 },
    { CURLE_COULDNT_RESOLVE_PROXY, APR_EHOSTUNREACH, 1 },
    { CURLE_COULDNT_RESOLVE_HOST, APR_EHOSTUNREACH, 1 },
    { CURLE_COULDNT_CONNECT,      APR_ECONNREFUSED, 1 },
    { CURLE_OPERATION_TIMEDOUT,   APR_TIMEUP,       1 },
    { CURLE_GOT_NOTHING,          APR_ECONNRESET,   1 },
    { CURLE_SEND_ERROR,           APR_ECONNRESET,   1 },
    { CURLE_RECV_ERROR,           APR_ECONNRESET,   1 },
    { CURLE_PARTIAL_FILE,         APR_INCOMPLETE,   1 },
    { CURLE_HTTP2,                APR_ECONNRESET,   1 },
    { CURLE_HTTP2_STREAM,         APR_ECONNRESET,   1 },
    { CURLE_SSL_CONNECT_ERROR,    APR_ECONNABORTED, 1 },
    { CURLE_PEER_FAILED_VERIFICATION, APR_EACCES,   0 },
    { CURLE_SSL_CACERT_BADFILE,   APR_EACCES,       0 },
    { CURLE_OUT_OF_MEMORY,        APR_ENOMEM,       0 },
    { CURLE_BAD_FUNCTION_ARGUMENT, APR_EINVAL,      0 },
    { CURLE_WRITE_ERROR,          APR_ENOMEM,       0 },
};

apr_status_t rq_http_status_from_curl(int curl_code, int *ptransient)
{
    apr_size_t i;

    for (i = 0; i < sizeof(curl_map) / sizeof(curl_map[0]); i++) {
        if ((int)curl_map[i].code == curl_code) {
            if (ptransient) {
                *ptransient = curl_map[i].transient;
            }
            return curl_map[i].status;
        }
    }
    if (ptransient) {
        *ptransient = 0;
    }
    return APR_EGENERAL;
}

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;
static CURLcode curl_init_rc;

static void curl_init_once(void)
{
    curl_init_rc = curl_global_init(CURL_GLOBAL_DEFAULT);
}

static apr_status_t http_cleanup(void *data)
{
    rq_http_t *http = data;

    if (http->curl) {
        curl_easy_cleanup(http->curl);
        http->curl = NULL;
    }
    return APR_SUCCESS;
}

apr_status_t rq_http_create(rq_http_t **phttp, apr_pool_t *p)
{
    rq_http_t *http;

    pthread_once(&curl_once, curl_init_once);
    if (curl_init_rc != CURLE_OK) {
        return APR_EGENERAL;
    }

    http = apr_pcalloc(p, sizeof(*http));
    http->curl = curl_easy_init();
    if (!http->curl) {
        return APR_ENOMEM;
    }
    apr_pool_cleanup_register(p, http, http_cleanup, apr_pool_cleanup_null);
    *phttp = http;
    return APR_SUCCESS;
}

apr_status_t rq_http_create_custom(rq_http_t **phttp, apr_pool_t *p, rq_http_call_fn *fn,
                                   void *baton)
{
    rq_http_t *http = apr_pcalloc(p, sizeof(*http));

    http->fn = fn;
    http->baton = baton;
    *phttp = http;
    return APR_SUCCESS;
}

long rq_http_connects(const rq_http_t *http)
{
    return http->connects;
}

static size_t sink_body(char *data, size_t size, size_t n, void *baton)
{
    http_sink_t *sink = baton;
    apr_size_t len = size * n;
    char *nbuf;

    if (sink->len + len + 1 > sink->cap) {
        apr_size_t cap = sink->cap ? sink->cap : 4096;

        while (cap < sink->len + len + 1) {
            cap *= 2;
        }
        nbuf = apr_palloc(sink->p, cap);
        if (sink->len) {
            memcpy(nbuf, sink->buf, sink->len);
        }
        sink->buf = nbuf;
        sink->cap = cap;
    }
    memcpy(sink->buf + sink->len, data, len);
    sink->len += len;
    sink->buf[sink->len] = '\0';
    return len;
}

/* Keeps the headers of the final response only (not of a 100 Continue). */
static size_t sink_header(char *data, size_t size, size_t n, void *baton)
{
    http_sink_t *sink = baton;
    apr_size_t len = size * n;
    char *line = apr_pstrmemdup(sink->p, data, len);
    char *colon;

    if (strncmp(line, "HTTP/", 5) == 0) {
        apr_table_clear(sink->headers);
        return len;
    }
    colon = strchr(line, ':');
    if (colon) {
        char *value = colon + 1;

        *colon = '\0';
        value += strspn(value, " \t");
        value[strcspn(value, "\r\n")] = '\0';
        apr_table_add(sink->headers, line, value);
    }
    return len;
}

static struct curl_slist *http_header_list(const rq_http_request_t *req, apr_pool_t *p)
{
    struct curl_slist *list = NULL;
    struct curl_slist *next;
    int i;

    /* curl would add "Expect: 100-continue" to larger bodies; we sign what we send. */
    list = curl_slist_append(list, "Expect:");
    for (i = 0; list && req->headers && i < req->headers->nelts; i++) {
        const rq_header_t *h = &APR_ARRAY_IDX(req->headers, i, rq_header_t);

        next = curl_slist_append(list, apr_pstrcat(p, h->name, ": ", h->value, NULL));
        if (!next) {
            curl_slist_free_all(list);
            return NULL;
        }
        list = next;
    }
    return list;
}

static void http_setup(rq_http_t *http, const rq_http_request_t *req, http_sink_t *sink,
                       struct curl_slist *hdrs)
{
    CURL *c = http->curl;

    curl_easy_reset(c);
    curl_easy_setopt(c, CURLOPT_URL, req->url);
    curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, req->method);
    curl_easy_setopt(c, CURLOPT_POST, 1L);
    curl_easy_setopt(c, CURLOPT_POSTFIELDS, req->body ? req->body : "");
    curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)req->body_len);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, hdrs);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, sink_body);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, sink);
    curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, sink_header);
    curl_easy_setopt(c, CURLOPT_HEADERDATA, sink);
    curl_easy_setopt(c, CURLOPT_ERRORBUFFER, http->errbuf);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_TCP_KEEPALIVE, 1L);
    curl_easy_setopt(c, CURLOPT_TCP_NODELAY, 1L);
    curl_easy_setopt(c, CURLOPT_NOPROXY, "localhost,127.0.0.1,::1");
    curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(c, CURLOPT_ACCEPT_ENCODING, NULL);
    if (req->connect_timeout > 0) {
        curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS,
                         (long)apr_time_as_msec(req->connect_timeout));
    }
    if (req->timeout > 0) {
        curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, (long)apr_time_as_msec(req->timeout));
    }
}

static apr_status_t http_curl_call(rq_http_response_t *resp, rq_http_t *http, apr_pool_t *p,
                                   const rq_http_request_t *req)
{
    http_sink_t sink = { p, NULL, 0, 0, apr_table_make(p, 8) };
    struct curl_slist *hdrs = http_header_list(req, p);
    CURLcode rc;
    long status = 0;
    long connects = 0;
    apr_status_t rv;

    if (!hdrs) {
        return APR_ENOMEM;
    }

    http->errbuf[0] = '\0';
    http_setup(http, req, &sink, hdrs);
    rc = curl_easy_perform(http->curl);
    curl_easy_getinfo(http->curl, CURLINFO_RESPONSE_CODE, &status);
    curl_easy_getinfo(http->curl, CURLINFO_NUM_CONNECTS, &connects);
    http->connects += connects;
    curl_easy_setopt(http->curl, CURLOPT_HTTPHEADER, NULL);
    curl_slist_free_all(hdrs);

    resp->headers = sink.headers;
    resp->body = sink.buf ? sink.buf : "";
    resp->body_len = sink.len;
    rv = rq_http_status_from_curl(rc, &resp->transient);
    if (rv != APR_SUCCESS) {
        resp->status = 0;
        resp->error = apr_pstrdup(p, http->errbuf[0] ? http->errbuf : curl_easy_strerror(rc));
        return rv;
    }
    resp->status = (int)status;
    return APR_SUCCESS;
}

apr_status_t rq_http_call(rq_http_response_t *resp, rq_http_t *http, apr_pool_t *p,
                          const rq_http_request_t *req)
{
    memset(resp, 0, sizeof(*resp));
    if (http->fn) {
        apr_status_t rv = http->fn(resp, http->baton, p, req);

        if (!resp->headers) {
            resp->headers = apr_table_make(p, 1);
        }
        if (!resp->body) {
            resp->body = "";
        }
        return rv;
    }
    return http_curl_call(resp, http, p, req);
}
