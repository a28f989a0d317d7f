/*
 * AWS Signature Version 4 with OpenSSL; see rq_sigv4.h for the stages.
 *
 * Every stage returns what AWS's test suite calls it, byte for byte, so a
 * signature mismatch can be traced to the first stage that differs.
 */
#include <ctype.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include <apr_strings.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "rq_log.h"
#include "rq_sigv4.h"

#define KEY_CACHE_SLOTS 8
#define KEY_CACHE_FIELD 64

static const char hex_upper[] = "0123456789ABCDEF";
static const char hex_lower[] = "0123456789abcdef";

typedef struct key_slot_t {
    int used;
    char date[9];
    char region[KEY_CACHE_FIELD];
    char service[KEY_CACHE_FIELD];
    unsigned char secret_hash[RQ_SIGV4_KEY_LEN];
    unsigned char key[RQ_SIGV4_KEY_LEN];
} key_slot_t;

/*
 * A plain pthread mutex rather than an apr_thread_mutex_t: the process-wide
 * cache must work without an initialisation call and outlive every pool.
 */
struct rq_sigv4_key_cache_t {
    pthread_mutex_t lock;
    key_slot_t slots[KEY_CACHE_SLOTS];
    unsigned int next;
    unsigned long hits;
    unsigned long misses;
};

static rq_sigv4_key_cache_t default_cache = { .lock = PTHREAD_MUTEX_INITIALIZER };

/* A header reduced to its canonical form. */
typedef struct canon_header_t {
    const char *name;
    const char *value;
} canon_header_t;

typedef struct query_pair_t {
    const char *name;
    const char *value;
} query_pair_t;

void rq_sigv4_amz_date(char buf[17], apr_time_t t)
{
    apr_time_exp_t tm;

    apr_time_exp_gmt(&tm, t);
    apr_snprintf(buf, 17, "%04d%02d%02dT%02d%02d%02dZ", tm.tm_year + 1900, tm.tm_mon + 1,
                 tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec);
}

static int digits_value(const char *s, int n)
{
    int v = 0;
    int i;

    for (i = 0; i < n; i++) {
        if (!isdigit((unsigned char)s[i])) {
            return -1;
        }
        v = v * 10 + (s[i] - '0');
    }
    return v;
}

apr_status_t rq_sigv4_date_check(const char *d)
{
    int month, day, hour, minute, second;

    if (!d || strlen(d) != 16 || d[8] != 'T' || d[15] != 'Z' || digits_value(d, 4) < 0) {
        return APR_EINVAL;
    }

    month = digits_value(d + 4, 2);
    day = digits_value(d + 6, 2);
    hour = digits_value(d + 9, 2);
    minute = digits_value(d + 11, 2);
    second = digits_value(d + 13, 2);
    if (month < 1 || month > 12 || day < 1 || day > 31 || hour < 0 || hour > 23
        || minute < 0 || minute > 59 || second < 0 || second > 60) {
        return APR_EINVAL;
    }
    return APR_SUCCESS;
}

static int is_unreserved(unsigned char c)
{
    return isalnum(c) || c == '-' || c == '.' || c == '_' || c == '~';
}

/* Percent-encodes s[0..len) per byte; keeps '/' as is when keep_slash. */
static char *uri_encode(apr_pool_t *p, const char *s, apr_size_t len, int keep_slash)
{
    char *out = apr_palloc(p, len * 3 + 1);
    char *o = out;
    apr_size_t i;

    for (i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];

        if (is_unreserved(c) || (keep_slash && c == '/')) {
            *o++ = (char)c;
            continue;
        }
        *o++ = '%';
        *o++ = hex_upper[c >> 4];
        *o++ = hex_upper[c & 0x0f];
    }
    *o = '\0';
    return out;
}

static int hex_digit(char c)
{
    if (c >= '0' && c <= '9') {
        return c - '0';
    }
    if (c >= 'a' && c <= 'f') {
        return c - 'a' + 10;
    }
    if (c >= 'A' && c <= 'F') {
        return c - 'A' + 10;
    }
    return -1;
}

/* Decodes %XX escapes of s[0..len); the result may hold NUL bytes. */
static apr_status_t pct_decode(char **pout, apr_size_t *plen, apr_pool_t *p, const char *s,
                               apr_size_t len)
{
    char *out = apr_palloc(p, len + 1);
    apr_size_t i, n = 0;

    for (i = 0; i < len; i++) {
        int hi, lo;

        if (s[i] != '%') {
            out[n++] = s[i];
            continue;
        }
        if (i + 2 >= len) {
            return APR_EINVAL;
        }
        hi = hex_digit(s[i + 1]);
        lo = hex_digit(s[i + 2]);
        if (hi < 0 || lo < 0) {
            return APR_EINVAL;
        }
        out[n++] = (char)(hi << 4 | lo);
        i += 2;
    }
    out[n] = '\0';
    *pout = out;
    *plen = n;
    return APR_SUCCESS;
}

typedef struct segment_t {
    const char *s;
    apr_size_t len;
} segment_t;

/* Splits the path into segments, dropping empty and "." ones and popping "..". */
static apr_array_header_t *path_segments(int *pdir, apr_pool_t *p, const char *path,
                                         apr_size_t len)
{
    apr_array_header_t *segs = apr_array_make(p, 8, sizeof(segment_t));
    apr_size_t start = 0, i;

    *pdir = 0;
    for (i = 0; i <= len; i++) {
        apr_size_t n = i - start;
        const char *s = path + start;

        if (i < len && path[i] != '/') {
            continue;
        }
        start = i + 1;
        *pdir = (n == 0 || (n == 1 && s[0] == '.') || (n == 2 && s[0] == '.' && s[1] == '.'));
        if (n == 2 && s[0] == '.' && s[1] == '.') {
            if (segs->nelts > 0) {
                apr_array_pop(segs);
            }
        }
        else if (!*pdir) {
            segment_t *seg = apr_array_push(segs);

            seg->s = s;
            seg->len = n;
        }
    }
    return segs;
}

apr_status_t rq_sigv4_canonical_uri(const char **pout, apr_pool_t *p, const char *path,
                                    apr_size_t len)
{
    apr_array_header_t *segs;
    const segment_t *seg;
    char *out;
    int dir, i;

    segs = path_segments(&dir, p, path ? path : "", path ? len : 0);
    if (segs->nelts == 0) {
        *pout = "/";
        return APR_SUCCESS;
    }

    seg = (const segment_t *)segs->elts;
    out = "";
    for (i = 0; i < segs->nelts; i++) {
        out = apr_pstrcat(p, out, "/", uri_encode(p, seg[i].s, seg[i].len, 0), NULL);
    }
    *pout = dir ? apr_pstrcat(p, out, "/", NULL) : out;
    return APR_SUCCESS;
}

static int query_pair_cmp(const void *a, const void *b)
{
    const query_pair_t *x = a;
    const query_pair_t *y = b;
    int c = strcmp(x->name, y->name);

    return c ? c : strcmp(x->value, y->value);
}

/* Decodes and re-encodes one "name[=value]" piece of a query string. */
static apr_status_t query_pair_parse(query_pair_t *pair, apr_pool_t *p, const char *s,
                                     apr_size_t len)
{
    const char *eq = memchr(s, '=', len);
    apr_size_t name_len = eq ? (apr_size_t)(eq - s) : len;
    char *dec;
    apr_size_t dec_len;
    apr_status_t rv;

    rv = pct_decode(&dec, &dec_len, p, s, name_len);
    if (rv != APR_SUCCESS) {
        return rv;
    }
    pair->name = uri_encode(p, dec, dec_len, 0);

    pair->value = "";
    if (!eq) {
        return APR_SUCCESS;
    }
    rv = pct_decode(&dec, &dec_len, p, eq + 1, len - name_len - 1);
    if (rv != APR_SUCCESS) {
        return rv;
    }
    pair->value = uri_encode(p, dec, dec_len, 0);
    return APR_SUCCESS;
}

apr_status_t rq_sigv4_canonical_query(const char **pout, apr_pool_t *p, const char *query)
{
    apr_array_header_t *pairs = apr_array_make(p, 8, sizeof(query_pair_t));
    const query_pair_t *pair;
    const char *s = query ? query : "";
    char *out = "";
    int i;

    while (*s) {
        apr_size_t len = strcspn(s, "&");

        if (len > 0) {
            apr_status_t rv = query_pair_parse(apr_array_push(pairs), p, s, len);

            if (rv != APR_SUCCESS) {
                rq_log_perror(RQ_LOG_MARK, RQ_LOG_DEBUG, rv, p,
                              "RQ03001: malformed percent escape in the query string");
                return rv;
            }
        }
        s += len + (s[len] == '&');
    }

    qsort(pairs->elts, (size_t)pairs->nelts, sizeof(query_pair_t), query_pair_cmp);
    pair = (const query_pair_t *)pairs->elts;
    for (i = 0; i < pairs->nelts; i++) {
        out = apr_pstrcat(p, out, i ? "&" : "", pair[i].name, "=", pair[i].value, NULL);
    }
    *pout = out;
    return APR_SUCCESS;
}

static int is_space(char c)
{
    return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

/* Trims a header value and turns each inner run of white space into one space. */
static char *header_value_clean(apr_pool_t *p, const char *v)
{
    char *out = apr_palloc(p, strlen(v) + 1);
    char *o = out;
    int pending = 0;

    for (; *v; v++) {
        if (is_space(*v)) {
            pending = (o != out);
            continue;
        }
        if (pending) {
            *o++ = ' ';
            pending = 0;
        }
        *o++ = *v;
    }
    *o = '\0';
    return out;
}

static void str_tolower(char *s)
{
    for (; *s; s++) {
        *s = (char)tolower((unsigned char)*s);
    }
}

static int canon_header_cmp(const void *a, const void *b)
{
    return strcmp(((const canon_header_t *)a)->name, ((const canon_header_t *)b)->name);
}

static canon_header_t *canon_header_find(apr_array_header_t *list, const char *name)
{
    canon_header_t *h = (canon_header_t *)list->elts;
    int i;

    for (i = 0; i < list->nelts; i++) {
        if (strcmp(h[i].name, name) == 0) {
            return &h[i];
        }
    }
    return NULL;
}

/* Lower-cases, merges and sorts the headers that are signed. */
static apr_status_t headers_canonicalise(apr_array_header_t **plist, apr_pool_t *p,
                                         const apr_array_header_t *headers)
{
    apr_array_header_t *list = apr_array_make(p, 8, sizeof(canon_header_t));
    const rq_header_t *h = headers ? (const rq_header_t *)headers->elts : NULL;
    int i, n = headers ? headers->nelts : 0;

    for (i = 0; i < n; i++) {
        char *name = header_value_clean(p, h[i].name ? h[i].name : "");
        const char *value = header_value_clean(p, h[i].value ? h[i].value : "");
        canon_header_t *c;

        if (!*name) {
            rq_log_perror(RQ_LOG_MARK, RQ_LOG_DEBUG, APR_EINVAL, p,
                          "RQ03002: a header to sign has an empty name");
            return APR_EINVAL;
        }
        str_tolower(name);
        if (strcmp(name, "authorization") == 0) {
            continue;
        }
        c = canon_header_find(list, name);
        if (c) {
            c->value = apr_pstrcat(p, c->value, ",", value, NULL);
            continue;
        }
        c = apr_array_push(list);
        c->name = name;
        c->value = value;
    }

    qsort(list->elts, (size_t)list->nelts, sizeof(canon_header_t), canon_header_cmp);
    *plist = list;
    return APR_SUCCESS;
}

/*
 * Canonicalises the headers once and renders what the caller asks for: the
 * canonical header lines and/or the signed header names (either may be NULL).
 */
static apr_status_t headers_render(const char **pcanon, const char **psigned, apr_pool_t *p,
                                   const apr_array_header_t *headers)
{
    apr_array_header_t *list;
    const canon_header_t *c;
    char *canon = "";
    char *names = "";
    apr_status_t rv;
    int i;

    rv = headers_canonicalise(&list, p, headers);
    if (rv != APR_SUCCESS) {
        return rv;
    }

    c = (const canon_header_t *)list->elts;
    for (i = 0; i < list->nelts; i++) {
        if (pcanon) {
            canon = apr_pstrcat(p, canon, c[i].name, ":", c[i].value, "\n", NULL);
        }
        if (psigned) {
            names = apr_pstrcat(p, names, i ? ";" : "", c[i].name, NULL);
        }
    }
    if (pcanon) {
        *pcanon = canon;
    }
    if (psigned) {
        *psigned = names;
    }
    return APR_SUCCESS;
}

apr_status_t rq_sigv4_canonical_headers(const char **pout, apr_pool_t *p,
                                        const apr_array_header_t *headers)
{
    return headers_render(pout, NULL, p, headers);
}

apr_status_t rq_sigv4_signed_headers(const char **pout, apr_pool_t *p,
                                     const apr_array_header_t *headers)
{
    return headers_render(NULL, pout, p, headers);
}

static void hex_lower_encode(char *out, const unsigned char *in, apr_size_t len)
{
    apr_size_t i;

    for (i = 0; i < len; i++) {
        out[2 * i] = hex_lower[in[i] >> 4];
        out[2 * i + 1] = hex_lower[in[i] & 0x0f];
    }
    out[2 * len] = '\0';
}

static apr_status_t sha256(unsigned char out[RQ_SIGV4_KEY_LEN], const void *data,
                           apr_size_t len)
{
    unsigned int n = 0;

    if (!EVP_Digest(data, len, out, &n, EVP_sha256(), NULL) || n != RQ_SIGV4_KEY_LEN) {
        return APR_EGENERAL;
    }
    return APR_SUCCESS;
}

static apr_status_t hmac_sha256(unsigned char out[RQ_SIGV4_KEY_LEN], const void *key,
                                apr_size_t key_len, const void *data, apr_size_t len)
{
    unsigned int n = 0;

    if (!HMAC(EVP_sha256(), key, (int)key_len, data, len, out, &n)
        || n != RQ_SIGV4_KEY_LEN) {
        return APR_EGENERAL;
    }
    return APR_SUCCESS;
}

apr_status_t rq_sigv4_payload_hash(char out[RQ_SIGV4_HEX_LEN], const void *body, apr_size_t len)
{
    unsigned char md[RQ_SIGV4_KEY_LEN];
    apr_status_t rv;

    rv = sha256(md, body ? body : "", body ? len : 0);
    if (rv != APR_SUCCESS) {
        return rv;
    }
    hex_lower_encode(out, md, sizeof(md));
    return APR_SUCCESS;
}

/* The first header of that name (any case), or NULL. */
static const char *header_get(const apr_array_header_t *headers, const char *name)
{
    const rq_header_t *h;
    int i;

    if (!headers) {
        return NULL;
    }
    h = (const rq_header_t *)headers->elts;
    for (i = 0; i < headers->nelts; i++) {
        if (h[i].name && strcasecmp(h[i].name, name) == 0) {
            return h[i].value ? h[i].value : "";
        }
    }
    return NULL;
}

static apr_status_t request_payload_hash(const char **pout, apr_pool_t *p,
                                         const rq_sigv4_input_t *in)
{
    const char *given = header_get(in->headers, "X-Amz-Content-Sha256");
    char *hex;

    if (given) {
        *pout = header_value_clean(p, given);
        return APR_SUCCESS;
    }
    hex = apr_palloc(p, RQ_SIGV4_HEX_LEN);
    *pout = hex;
    return rq_sigv4_payload_hash(hex, in->body, in->body_len);
}

apr_status_t rq_sigv4_canonical_request(const char **pcreq, const char **psigned,
                                        apr_pool_t *p, const rq_sigv4_input_t *in)
{
    const char *uri = in->uri ? in->uri : "/";
    const char *q = strchr(uri, '?');
    const char *curi, *cquery, *cheaders, *signed_headers, *hash;
    apr_status_t rv;

    if (!in->method || !*in->method) {
        return APR_EINVAL;
    }

    rv = rq_sigv4_canonical_uri(&curi, p, uri, q ? (apr_size_t)(q - uri) : strlen(uri));
    if (rv == APR_SUCCESS) {
        rv = rq_sigv4_canonical_query(&cquery, p, q ? q + 1 : NULL);
    }
    if (rv == APR_SUCCESS) {
        rv = headers_render(&cheaders, &signed_headers, p, in->headers);
    }
    if (rv == APR_SUCCESS) {
        rv = request_payload_hash(&hash, p, in);
    }
    if (rv != APR_SUCCESS) {
        return rv;
    }

    *pcreq = apr_pstrcat(p, in->method, "\n", curi, "\n", cquery, "\n", cheaders, "\n",
                         signed_headers, "\n", hash, NULL);
    if (psigned) {
        *psigned = signed_headers;
    }
    return APR_SUCCESS;
}

apr_status_t rq_sigv4_scope(const char **pout, apr_pool_t *p, const char *amz_date,
                            const char *region, const char *service)
{
    if (rq_sigv4_date_check(amz_date) != APR_SUCCESS || !region || !*region || !service
        || !*service) {
        return APR_EINVAL;
    }
    *pout = apr_pstrcat(p, apr_pstrndup(p, amz_date, 8), "/", region, "/", service,
                        "/aws4_request", NULL);
    return APR_SUCCESS;
}

apr_status_t rq_sigv4_string_to_sign(const char **pout, apr_pool_t *p, const char *creq,
                                     const char *amz_date, const char *region,
                                     const char *service)
{
    char hex[RQ_SIGV4_HEX_LEN];
    const char *scope;
    apr_status_t rv;

    rv = rq_sigv4_scope(&scope, p, amz_date, region, service);
    if (rv != APR_SUCCESS) {
        return rv;
    }
    rv = rq_sigv4_payload_hash(hex, creq, strlen(creq));
    if (rv != APR_SUCCESS) {
        return rv;
    }
    *pout = apr_pstrcat(p, RQ_SIGV4_ALGORITHM "\n", amz_date, "\n", scope, "\n", hex, NULL);
    return APR_SUCCESS;
}

static apr_status_t key_cache_cleanup(void *data)
{
    rq_sigv4_key_cache_t *cache = data;

    OPENSSL_cleanse(cache->slots, sizeof(cache->slots));
    pthread_mutex_destroy(&cache->lock);
    return APR_SUCCESS;
}

apr_status_t rq_sigv4_key_cache_create(rq_sigv4_key_cache_t **pcache, apr_pool_t *p)
{
    rq_sigv4_key_cache_t *cache = apr_pcalloc(p, sizeof(*cache));

    if (pthread_mutex_init(&cache->lock, NULL) != 0) {
        return APR_ENOMEM;
    }
    apr_pool_cleanup_register(p, cache, key_cache_cleanup, apr_pool_cleanup_null);
    *pcache = cache;
    return APR_SUCCESS;
}

rq_sigv4_key_cache_t *rq_sigv4_key_cache_default(void)
{
    return &default_cache;
}

void rq_sigv4_key_cache_stats(const rq_sigv4_key_cache_t *cache, unsigned long *phits,
                              unsigned long *pmisses)
{
    rq_sigv4_key_cache_t *c = (rq_sigv4_key_cache_t *)cache;

    pthread_mutex_lock(&c->lock);
    *phits = c->hits;
    *pmisses = c->misses;
    pthread_mutex_unlock(&c->lock);
}

static int key_slot_matches(const key_slot_t *s, const char *date, const char *region,
                            const char *service, const unsigned char *secret_hash)
{
    return s->used && strcmp(s->date, date) == 0 && strcmp(s->region, region) == 0
           && strcmp(s->service, service) == 0
           && CRYPTO_memcmp(s->secret_hash, secret_hash, RQ_SIGV4_KEY_LEN) == 0;
}

/* Copies a cached key into key; returns 1 when found. Counts the lookup. */
static int key_cache_lookup(rq_sigv4_key_cache_t *cache, unsigned char *key, const char *date,
                            const char *region, const char *service,
                            const unsigned char *secret_hash)
{
    int i, found = 0;

    pthread_mutex_lock(&cache->lock);
    for (i = 0; i < KEY_CACHE_SLOTS && !found; i++) {
        if (key_slot_matches(&cache->slots[i], date, region, service, secret_hash)) {
            memcpy(key, cache->slots[i].key, RQ_SIGV4_KEY_LEN);
            found = 1;
        }
    }
    if (found) {
        cache->hits++;
    }
    else {
        cache->misses++;
    }
    pthread_mutex_unlock(&cache->lock);
    return found;
}

/* Stores a key, replacing the oldest slot once all are in use. */
static void key_cache_store(rq_sigv4_key_cache_t *cache, const unsigned char *key,
                            const char *date, const char *region, const char *service,
                            const unsigned char *secret_hash)
{
    key_slot_t *s;

    if (strlen(region) >= KEY_CACHE_FIELD || strlen(service) >= KEY_CACHE_FIELD) {
        return;
    }

    pthread_mutex_lock(&cache->lock);
    s = &cache->slots[cache->next];
    cache->next = (cache->next + 1) % KEY_CACHE_SLOTS;
    s->used = 1;
    apr_cpystrn(s->date, date, sizeof(s->date));
    apr_cpystrn(s->region, region, sizeof(s->region));
    apr_cpystrn(s->service, service, sizeof(s->service));
    memcpy(s->secret_hash, secret_hash, RQ_SIGV4_KEY_LEN);
    memcpy(s->key, key, RQ_SIGV4_KEY_LEN);
    pthread_mutex_unlock(&cache->lock);
}

/* The HMAC chain from "AWS4" + secret down to the signing key. */
static apr_status_t signing_key_derive(unsigned char *key, const char *secret,
                                       const char *date, const char *region,
                                       const char *service)
{
    apr_size_t secret_len = strlen(secret);
    unsigned char *k0 = OPENSSL_malloc(secret_len + 4);
    unsigned char k[RQ_SIGV4_KEY_LEN];
    apr_status_t rv;

    if (!k0) {
        return APR_ENOMEM;
    }
    memcpy(k0, "AWS4", 4);
    memcpy(k0 + 4, secret, secret_len);

    rv = hmac_sha256(k, k0, secret_len + 4, date, strlen(date));
    if (rv == APR_SUCCESS) {
        rv = hmac_sha256(k, k, sizeof(k), region, strlen(region));
    }
    if (rv == APR_SUCCESS) {
        rv = hmac_sha256(k, k, sizeof(k), service, strlen(service));
    }
    if (rv == APR_SUCCESS) {
        rv = hmac_sha256(key, k, sizeof(k), "aws4_request", 12);
    }

    OPENSSL_clear_free(k0, secret_len + 4);
    OPENSSL_cleanse(k, sizeof(k));
    return rv;
}

apr_status_t rq_sigv4_signing_key(unsigned char key[RQ_SIGV4_KEY_LEN],
                                  rq_sigv4_key_cache_t *cache, const char *secret,
                                  const char *amz_date, const char *region,
                                  const char *service)
{
    unsigned char secret_hash[RQ_SIGV4_KEY_LEN];
    char date[9];
    apr_status_t rv;

    if (!secret || !*secret || rq_sigv4_date_check(amz_date) != APR_SUCCESS || !region
        || !*region || !service || !*service) {
        return APR_EINVAL;
    }
    apr_cpystrn(date, amz_date, sizeof(date));

    rv = sha256(secret_hash, secret, strlen(secret));
    if (rv != APR_SUCCESS) {
        return rv;
    }
    if (cache && key_cache_lookup(cache, key, date, region, service, secret_hash)) {
        return APR_SUCCESS;
    }

    rv = signing_key_derive(key, secret, date, region, service);
    if (rv == APR_SUCCESS && cache) {
        key_cache_store(cache, key, date, region, service, secret_hash);
    }
    return rv;
}

apr_status_t rq_sigv4_signature(char out[RQ_SIGV4_HEX_LEN],
                                const unsigned char key[RQ_SIGV4_KEY_LEN], const char *sts)
{
    unsigned char mac[RQ_SIGV4_KEY_LEN];
    apr_status_t rv;

    rv = hmac_sha256(mac, key, RQ_SIGV4_KEY_LEN, sts, strlen(sts));
    if (rv != APR_SUCCESS) {
        return rv;
    }
    hex_lower_encode(out, mac, sizeof(mac));
    return APR_SUCCESS;
}

apr_status_t rq_sigv4_authorization(const char **pout, apr_pool_t *p, const char *access_key,
                                    const char *scope, const char *signed_headers,
                                    const char *signature)
{
    if (!access_key || !*access_key || !scope || !signed_headers || !signature) {
        return APR_EINVAL;
    }
    *pout = apr_pstrcat(p, RQ_SIGV4_ALGORITHM " Credential=", access_key, "/", scope,
                        ", SignedHeaders=", signed_headers, ", Signature=", signature, NULL);
    return APR_SUCCESS;
}

/* The checks that catch a request that could never verify. */
static apr_status_t sign_input_check(apr_pool_t *p, const rq_sigv4_input_t *in,
                                     const rq_creds_t *creds, const char *amz_date)
{
    const char *date = header_get(in->headers, "X-Amz-Date");
    const char *token = header_get(in->headers, "X-Amz-Security-Token");
    const char *why = NULL;

    if (!creds || !creds->access_key || !*creds->access_key || !creds->secret_key
        || !*creds->secret_key) {
        why = "no access key or secret key";
    }
    else if (rq_sigv4_date_check(amz_date) != APR_SUCCESS) {
        why = "the signing time is not of the form YYYYMMDDTHHMMSSZ";
    }
    else if (!header_get(in->headers, "Host")) {
        why = "the request has no Host header";
    }
    else if (!date || strcmp(header_value_clean(p, date), amz_date) != 0) {
        why = "the request's X-Amz-Date header is missing or differs from the signing time";
    }
    else if (creds->session_token && (!token || strcmp(token, creds->session_token) != 0)) {
        why = "the request's X-Amz-Security-Token header is missing or differs from the "
              "session token";
    }
    if (why) {
        rq_log_perror(RQ_LOG_MARK, RQ_LOG_DEBUG, APR_EINVAL, p, "RQ03003: cannot sign: %s",
                      why);
        return APR_EINVAL;
    }
    return APR_SUCCESS;
}

apr_status_t rq_sigv4_sign_all(rq_sigv4_result_t *out, apr_pool_t *p,
                               const rq_sigv4_input_t *in, const rq_creds_t *creds,
                               const char *region, const char *service, const char *amz_date,
                               rq_sigv4_key_cache_t *cache)
{
    unsigned char key[RQ_SIGV4_KEY_LEN];
    char *sig = apr_palloc(p, RQ_SIGV4_HEX_LEN);
    const char *scope;
    apr_status_t rv;

    rv = sign_input_check(p, in, creds, amz_date);
    if (rv == APR_SUCCESS) {
        rv = rq_sigv4_canonical_request(&out->canonical_request, &out->signed_headers, p, in);
    }
    if (rv == APR_SUCCESS) {
        rv = rq_sigv4_string_to_sign(&out->string_to_sign, p, out->canonical_request,
                                     amz_date, region, service);
    }
    if (rv == APR_SUCCESS) {
        rv = rq_sigv4_signing_key(key, cache, creds->secret_key, amz_date, region, service);
    }
    if (rv == APR_SUCCESS) {
        rv = rq_sigv4_signature(sig, key, out->string_to_sign);
    }
    if (rv == APR_SUCCESS) {
        rv = rq_sigv4_scope(&scope, p, amz_date, region, service);
    }
    if (rv == APR_SUCCESS) {
        out->signature = sig;
        rv = rq_sigv4_authorization(&out->authorization, p, creds->access_key, scope,
                                    out->signed_headers, sig);
    }

    OPENSSL_cleanse(key, sizeof(key));
    return rv;
}

apr_status_t rq_sigv4_sign(const char **pauthz, apr_pool_t *p, const rq_sigv4_input_t *in,
                           const rq_creds_t *creds, const char *region, const char *service,
                           const char *amz_date)
{
    rq_sigv4_result_t res;
    apr_status_t rv;

    rv = rq_sigv4_sign_all(&res, p, in, creds, region, service, amz_date, &default_cache);
    if (rv != APR_SUCCESS) {
        return rv;
    }
    *pauthz = res.authorization;
    return APR_SUCCESS;
}
