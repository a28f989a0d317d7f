/*
 * SigV4: every vector of AWS's test suite (tests/sigv4/), stage by stage,
 * then each stage function on small cases, the signing key cache and the
 * raw request parser. The golden files are found through RQ_SIGV4_DIR, else
 * next to this executable (../../sigv4), else at tests/sigv4.
 */
#include <stdlib.h>
#include <string.h>

#include <apr_file_info.h>
#include <apr_file_io.h>
#include <apr_general.h>
#include <apr_strings.h>
#include <apr_thread_proc.h>

#include "rq_log.h"
#include "rq_reqfile.h"
#include "rq_sigv4.h"
#include "rq_tap.h"

#define AK "AKIDEXAMPLE"
#define SK "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"
#define TIME "20150830T123600Z"
#define REGION "us-east-1"
#define SERVICE "service"
#define VECTOR_COUNT 28
#define VANILLA_TOKEN "6e86291e8372ff2a2260956d9b8aae1d763fbf315fa00fa31553b73ebf194267"
#define EMPTY_SHA256 "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"

/* ---- helpers ------------------------------------------------------------ */

static const char *file_slurp(apr_pool_t *p, const char *path)
{
    apr_finfo_t fi;
    apr_file_t *f;
    apr_size_t n;
    char *buf;

    if (apr_stat(&fi, path, APR_FINFO_SIZE, p) != APR_SUCCESS
        || apr_file_open(&f, path, APR_FOPEN_READ | APR_FOPEN_BINARY, 0, p) != APR_SUCCESS) {
        return NULL;
    }
    n = (apr_size_t)fi.size;
    buf = apr_palloc(p, n + 1);
    if (apr_file_read_full(f, buf, n, &n) != APR_SUCCESS && n != (apr_size_t)fi.size) {
        buf = NULL;
    }
    else {
        buf[n] = '\0';
    }
    apr_file_close(f);
    return buf;
}

static int is_dir(apr_pool_t *p, const char *path)
{
    apr_finfo_t fi;

    return apr_stat(&fi, path, APR_FINFO_TYPE, p) == APR_SUCCESS && fi.filetype == APR_DIR;
}

static const char *suite_dir(apr_pool_t *p, const char *argv0)
{
    const char *env = getenv("RQ_SIGV4_DIR");
    const char *slash = strrchr(argv0, '/');
    const char *near;

    if (env && *env) {
        return env;
    }
    if (slash) {
        near = apr_pstrcat(p, apr_pstrndup(p, argv0, (apr_size_t)(slash - argv0)),
                           "/../../sigv4", NULL);
        if (is_dir(p, near)) {
            return near;
        }
    }
    return "tests/sigv4";
}

static int name_cmp(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* Collects every folder under dir that holds "<folder name>.req". */
static void vectors_find(apr_array_header_t *out, apr_pool_t *p, const char *dir)
{
    const char *base = strrchr(dir, '/') ? strrchr(dir, '/') + 1 : dir;
    apr_finfo_t fi;
    apr_dir_t *d;

    if (apr_stat(&fi, apr_pstrcat(p, dir, "/", base, ".req", NULL), APR_FINFO_TYPE, p)
        == APR_SUCCESS) {
        APR_ARRAY_PUSH(out, const char *) = dir;
        return;
    }
    if (apr_dir_open(&d, dir, p) != APR_SUCCESS) {
        return;
    }
    while (apr_dir_read(&fi, APR_FINFO_NAME | APR_FINFO_TYPE, d) == APR_SUCCESS) {
        if (fi.filetype == APR_DIR && fi.name[0] != '.') {
            vectors_find(out, p, apr_pstrcat(p, dir, "/", fi.name, NULL));
        }
    }
    apr_dir_close(d);
}

static rq_creds_t creds_make(const char *ak, const char *sk, const char *token)
{
    rq_creds_t c;

    memset(&c, 0, sizeof(c));
    c.access_key = ak;
    c.secret_key = sk;
    c.session_token = token;
    return c;
}

static apr_array_header_t *headers_make(apr_pool_t *p, const char *const *kv)
{
    apr_array_header_t *h = apr_array_make(p, 4, sizeof(rq_header_t));

    for (; kv[0]; kv += 2) {
        rq_header_t *e = apr_array_push(h);

        e->name = kv[0];
        e->value = kv[1];
    }
    return h;
}

/* ---- the vectors -------------------------------------------------------- */

/* Signs one vector stage by stage and compares each stage with its file. */
static void vector_check(apr_pool_t *p, const char *dir)
{
    const char *name = strrchr(dir, '/') + 1;
    const char *stem = apr_pstrcat(p, dir, "/", name, NULL);
    const char *creq, *sts, *signed_headers, *scope, *authz, *err, *one_call;
    char sig[RQ_SIGV4_HEX_LEN];
    unsigned char key[RQ_SIGV4_KEY_LEN];
    rq_creds_t creds = creds_make(AK, SK, NULL);
    rq_sigv4_input_t in;
    rq_reqfile_t *req;

    if (rq_reqfile_read(&req, &err, p, apr_pstrcat(p, stem, ".req", NULL)) != APR_SUCCESS) {
        RQ_OK(0, "%s: request file parses (%s)", name, err);
        return;
    }
    if (strcmp(name, "get-vanilla-with-session-token") == 0) {
        rq_reqfile_header_add(req, "X-Amz-Security-Token", VANILLA_TOKEN);
        creds.session_token = VANILLA_TOKEN;
    }
    rq_reqfile_to_sigv4(&in, req);

    creq = sts = authz = one_call = "(failed)";
    rq_sigv4_canonical_request(&creq, &signed_headers, p, &in);
    RQ_IS_STR(creq, file_slurp(p, apr_pstrcat(p, stem, ".creq", NULL)),
              "%s: canonical request", name);

    rq_sigv4_string_to_sign(&sts, p, creq, TIME, REGION, SERVICE);
    RQ_IS_STR(sts, file_slurp(p, apr_pstrcat(p, stem, ".sts", NULL)),
              "%s: string to sign", name);

    if (rq_sigv4_signing_key(key, NULL, SK, TIME, REGION, SERVICE) == APR_SUCCESS
        && rq_sigv4_signature(sig, key, sts) == APR_SUCCESS
        && rq_sigv4_scope(&scope, p, TIME, REGION, SERVICE) == APR_SUCCESS) {
        rq_sigv4_authorization(&authz, p, AK, scope, signed_headers, sig);
    }
    RQ_IS_STR(authz, file_slurp(p, apr_pstrcat(p, stem, ".authz", NULL)),
              "%s: authorization", name);

    rq_sigv4_sign(&one_call, p, &in, &creds, REGION, SERVICE, TIME);
    RQ_IS_STR(one_call, authz, "%s: rq_sigv4_sign gives the same authorization", name);
}

static void test_vectors(apr_pool_t *p, const char *dir)
{
    apr_array_header_t *found = apr_array_make(p, 32, sizeof(const char *));
    int i;

    vectors_find(found, p, dir);
    qsort(found->elts, (size_t)found->nelts, sizeof(const char *), name_cmp);
    RQ_IS_INT(found->nelts, VECTOR_COUNT, "all %d vectors found under %s", VECTOR_COUNT, dir);
    for (i = 0; i < found->nelts; i++) {
        vector_check(p, APR_ARRAY_IDX(found, i, const char *));
    }
}

/* ---- the stages on small cases ------------------------------------------ */

static void uri_is(apr_pool_t *p, const char *path, const char *want)
{
    const char *got = "(failed)";

    rq_sigv4_canonical_uri(&got, p, path, strlen(path));
    RQ_IS_STR(got, want, "canonical URI of '%s'", path);
}

static void test_canonical_uri(apr_pool_t *p)
{
    uri_is(p, "", "/");
    uri_is(p, "/", "/");
    uri_is(p, "/a/b/../c", "/a/c");
    uri_is(p, "/a/./b//c/", "/a/b/c/");
    uri_is(p, "/../..", "/");
    uri_is(p, "/a/b/..", "/a/");
    uri_is(p, "/a/b/.", "/a/b/");
    uri_is(p, "relative/x", "/relative/x");
    uri_is(p, "/a b+c", "/a%20b%2Bc");
    uri_is(p, "/%41", "/%2541");
    uri_is(p, "/\xc3\xa9", "/%C3%A9");
    uri_is(p, "/~x-y_z.w", "/~x-y_z.w");
    uri_is(p, "/123456789012/q.fifo", "/123456789012/q.fifo");
    uri_is(p, "/a/..b/...", "/a/..b/...");
}

static void query_is(apr_pool_t *p, const char *query, const char *want)
{
    const char *got = "(failed)";

    rq_sigv4_canonical_query(&got, p, query);
    RQ_IS_STR(got, want, "canonical query of '%s'", query ? query : "(null)");
}

static void test_canonical_query(apr_pool_t *p)
{
    const char *out;

    query_is(p, NULL, "");
    query_is(p, "", "");
    query_is(p, "b=2&a=1", "a=1&b=2");
    query_is(p, "a=2&a=1&a=10", "a=1&a=10&a=2");
    query_is(p, "a", "a=");
    query_is(p, "a=&b", "a=&b=");
    query_is(p, "&&a=1&", "a=1");
    query_is(p, "x=%2f%2F", "x=%2F%2F");
    query_is(p, "x=a+b", "x=a%2Bb");
    query_is(p, "x=%7E", "x=~");
    query_is(p, "k=v=w", "k=v%3Dw");
    query_is(p, "sp ace=1", "sp%20ace=1");
    query_is(p, "%E1%88%B4=1&P=2", "%E1%88%B4=1&P=2");
    RQ_IS_INT(rq_sigv4_canonical_query(&out, p, "%zz=1"), APR_EINVAL, "bad escape refused");
    RQ_IS_INT(rq_sigv4_canonical_query(&out, p, "a=%4"), APR_EINVAL, "short escape refused");
}

static void test_canonical_headers(apr_pool_t *p)
{
    static const char *const kv[] = {
        "Host", " example.com ",
        "X-B", "a   b\tc",
        "x-b", "d",
        "My-H", "v1\n   v2\r\n\tv3",
        "X-Empty", "",
        "Authorization", "AWS4-HMAC-SHA256 old",
        NULL
    };
    static const char *const bad[] = { " ", "v", NULL };
    apr_array_header_t *h = headers_make(p, kv);
    const char *out = "(failed)";

    rq_sigv4_canonical_headers(&out, p, h);
    RQ_IS_STR(out, "host:example.com\nmy-h:v1 v2 v3\nx-b:a b c,d\nx-empty:\n",
              "headers: lower-cased, trimmed, folded, merged in order, sorted");
    out = "(failed)";
    rq_sigv4_signed_headers(&out, p, h);
    RQ_IS_STR(out, "host;my-h;x-b;x-empty", "signed headers, Authorization left out");
    RQ_IS_INT(rq_sigv4_canonical_headers(&out, p, headers_make(p, bad)), APR_EINVAL,
              "a header with an empty name is refused");
}

static void test_payload_hash(void)
{
    char hex[RQ_SIGV4_HEX_LEN];

    rq_sigv4_payload_hash(hex, "", 0);
    RQ_IS_STR(hex, EMPTY_SHA256, "hash of the empty body");
    rq_sigv4_payload_hash(hex, "abc", 3);
    RQ_IS_STR(hex, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad",
              "hash of 'abc'");
    rq_sigv4_payload_hash(hex, "a\0b", 3);
    RQ_OK(strcmp(hex, EMPTY_SHA256) != 0 && strlen(hex) == 64,
          "a body with a NUL byte is hashed whole");
}

static void test_canonical_request_parts(apr_pool_t *p)
{
    static const char *const kv[] = {
        "Host", "sqs.eu-west-1.amazonaws.com",
        "X-Amz-Date", TIME,
        "X-Amz-Content-Sha256", "UNSIGNED-PAYLOAD",
        NULL
    };
    rq_sigv4_input_t in = { "PUT", "/a//b?z=1&y=", headers_make(p, kv), "body", 4 };
    const char *creq = "(failed)", *signed_headers = NULL;

    rq_sigv4_canonical_request(&creq, &signed_headers, p, &in);
    RQ_IS_STR(creq, "PUT\n/a/b\ny=&z=1\nhost:sqs.eu-west-1.amazonaws.com\n"
              "x-amz-content-sha256:UNSIGNED-PAYLOAD\nx-amz-date:" TIME "\n\n"
              "host;x-amz-content-sha256;x-amz-date\nUNSIGNED-PAYLOAD",
              "canonical request joins the stages; X-Amz-Content-Sha256 is the hash");
    RQ_IS_STR(signed_headers, "host;x-amz-content-sha256;x-amz-date", "signed headers out");
}

static void test_dates(apr_pool_t *p)
{
    char buf[17];
    const char *scope = "(failed)";

    rq_sigv4_amz_date(buf, apr_time_from_sec(1440938160));
    RQ_IS_STR(buf, TIME, "X-Amz-Date format");
    RQ_IS_INT(rq_sigv4_date_check(TIME), APR_SUCCESS, "good date accepted");
    RQ_IS_INT(rq_sigv4_date_check("20150830T123600"), APR_EINVAL, "no Z refused");
    RQ_IS_INT(rq_sigv4_date_check("20151330T123600Z"), APR_EINVAL, "month 13 refused");
    RQ_IS_INT(rq_sigv4_date_check("20150830 123600Z"), APR_EINVAL, "no T refused");
    RQ_IS_INT(rq_sigv4_date_check("2015083XT123600Z"), APR_EINVAL, "letter refused");
    RQ_IS_INT(rq_sigv4_date_check("20150830T243600Z"), APR_EINVAL, "hour 24 refused");
    RQ_IS_INT(rq_sigv4_date_check(NULL), APR_EINVAL, "NULL refused");
    rq_sigv4_scope(&scope, p, TIME, REGION, SERVICE);
    RQ_IS_STR(scope, "20150830/us-east-1/service/aws4_request", "credential scope");
}

static void hex_of(char out[RQ_SIGV4_HEX_LEN], const unsigned char *key)
{
    int i;

    for (i = 0; i < RQ_SIGV4_KEY_LEN; i++) {
        apr_snprintf(out + 2 * i, 3, "%02x", key[i]);
    }
}

static void test_signing_key(apr_pool_t *p)
{
    unsigned char k1[RQ_SIGV4_KEY_LEN], k2[RQ_SIGV4_KEY_LEN], k3[RQ_SIGV4_KEY_LEN];
    char hex[RQ_SIGV4_HEX_LEN];
    rq_sigv4_key_cache_t *cache;
    unsigned long hits, misses;

    /* The worked example of AWS's documentation on deriving a signing key. */
    rq_sigv4_signing_key(k1, NULL, SK, "20120215T000000Z", "us-east-1", "iam");
    hex_of(hex, k1);
    RQ_IS_STR(hex, "f4780e2d9f65fa895f9c67b32ce1baf0b0d8a43505a000a1a9e090d414db404d",
              "signing key of AWS's worked example");

    rq_sigv4_key_cache_create(&cache, p);
    rq_sigv4_signing_key(k1, cache, SK, TIME, REGION, "sqs");
    rq_sigv4_signing_key(k2, cache, SK, "20150830T235959Z", REGION, "sqs");
    rq_sigv4_key_cache_stats(cache, &hits, &misses);
    RQ_OK(hits == 1 && misses == 1, "second call the same day comes from the cache");
    RQ_OK(memcmp(k1, k2, sizeof(k1)) == 0, "cached key equals the derived one");

    rq_sigv4_signing_key(k3, cache, SK, TIME, "eu-west-1", "sqs");
    rq_sigv4_key_cache_stats(cache, &hits, &misses);
    RQ_OK(misses == 2 && memcmp(k1, k3, sizeof(k1)) != 0, "another region, another key");
    rq_sigv4_signing_key(k3, cache, "otherSecret", TIME, REGION, "sqs");
    RQ_OK(memcmp(k1, k3, sizeof(k1)) != 0, "another secret, another key");
    rq_sigv4_signing_key(k3, cache, SK, "20150831T000000Z", REGION, "sqs");
    RQ_OK(memcmp(k1, k3, sizeof(k1)) != 0, "another day, another key");
    rq_sigv4_signing_key(k3, NULL, SK, TIME, REGION, "sqs");
    RQ_OK(memcmp(k1, k3, sizeof(k1)) == 0, "the cache gives what derivation gives");
    RQ_IS_INT(rq_sigv4_signing_key(k3, cache, "", TIME, REGION, "sqs"), APR_EINVAL,
              "empty secret refused");
}

static void test_signing_key_eviction(apr_pool_t *p)
{
    unsigned char want[RQ_SIGV4_KEY_LEN], got[RQ_SIGV4_KEY_LEN];
    rq_sigv4_key_cache_t *cache;
    int i, ok = 1;

    rq_sigv4_key_cache_create(&cache, p);
    for (i = 0; i < 40; i++) {
        const char *region = apr_psprintf(p, "region-%d", i % 13);

        rq_sigv4_signing_key(want, NULL, SK, TIME, region, SERVICE);
        rq_sigv4_signing_key(got, cache, SK, TIME, region, SERVICE);
        ok = ok && memcmp(want, got, sizeof(want)) == 0;
    }
    RQ_OK(ok, "a full cache replaces old keys and still answers right");
}

typedef struct key_thread_t {
    rq_sigv4_key_cache_t *cache;
    const unsigned char *want; /* three keys, one per region */
    int bad;
} key_thread_t;

static void *APR_THREAD_FUNC key_thread(apr_thread_t *t, void *data)
{
    static const char *const regions[] = { "us-east-1", "eu-west-1", "ap-south-1" };
    key_thread_t *kt = data;
    unsigned char got[RQ_SIGV4_KEY_LEN];
    int i;

    for (i = 0; i < 300; i++) {
        rq_sigv4_signing_key(got, kt->cache, SK, TIME, regions[i % 3], "sqs");
        kt->bad += memcmp(got, kt->want + (i % 3) * RQ_SIGV4_KEY_LEN, RQ_SIGV4_KEY_LEN) != 0;
    }
    apr_thread_exit(t, APR_SUCCESS);
    return NULL;
}

static void test_signing_key_threads(apr_pool_t *p)
{
    static const char *const regions[] = { "us-east-1", "eu-west-1", "ap-south-1" };
    unsigned char want[3 * RQ_SIGV4_KEY_LEN];
    key_thread_t kt[4];
    apr_thread_t *th[4];
    apr_status_t trv;
    int i, bad = 0;

    for (i = 0; i < 3; i++) {
        rq_sigv4_signing_key(want + i * RQ_SIGV4_KEY_LEN, NULL, SK, TIME, regions[i], "sqs");
    }
    for (i = 0; i < 4; i++) {
        kt[i].cache = rq_sigv4_key_cache_default();
        kt[i].want = want;
        kt[i].bad = 0;
        apr_thread_create(&th[i], NULL, key_thread, &kt[i], p);
    }
    for (i = 0; i < 4; i++) {
        apr_thread_join(&trv, th[i]);
        bad += kt[i].bad;
    }
    RQ_IS_INT(bad, 0, "4 threads sharing the process cache all get the right keys");
}

/* ---- the one-call signer's checks ------------------------------------------ */

static char captured[8192];

static void log_capture(void *baton, const char *file, int line, int level, apr_status_t rv,
                        const char *msg)
{
    (void)baton;
    (void)file;
    (void)line;
    (void)level;
    (void)rv;
    apr_cpystrn(captured + strlen(captured), msg, sizeof(captured) - strlen(captured));
}

static int log_all_levels(void *baton, int level)
{
    (void)baton;
    (void)level;
    return 1;
}

static void sign_refused(apr_pool_t *p, const char *const *kv, const rq_creds_t *creds,
                         const char *what)
{
    rq_sigv4_input_t in = { "POST", "/", headers_make(p, kv), "{}", 2 };
    const char *authz = NULL;

    RQ_IS_INT(rq_sigv4_sign(&authz, p, &in, creds, REGION, "sqs", TIME), APR_EINVAL,
              "refused: %s", what);
}

static void test_sign_checks(apr_pool_t *p)
{
    static const char *const no_host[] = { "X-Amz-Date", TIME, NULL };
    static const char *const other_date[] = { "Host", "h", "X-Amz-Date", "20150830T123601Z",
                                               NULL };
    static const char *const good[] = { "Host", "h", "X-Amz-Date", TIME, NULL };
    static const char *const other_token[] = { "Host", "h", "X-Amz-Date", TIME,
                                               "X-Amz-Security-Token", "other", NULL };
    rq_creds_t creds = creds_make(AK, SK, NULL);
    rq_creds_t with_token = creds_make(AK, SK, "tokSECRETvalue");
    rq_creds_t no_secret = creds_make(AK, NULL, NULL);

    rq_log_set(log_capture, log_all_levels, NULL);
    sign_refused(p, no_host, &creds, "no Host header");
    sign_refused(p, other_date, &creds, "X-Amz-Date differs from the signing time");
    sign_refused(p, good, &with_token, "session token without its header");
    sign_refused(p, other_token, &with_token, "session token header differs");
    sign_refused(p, good, &no_secret, "no secret key");
    rq_log_set(NULL, NULL, NULL);

    RQ_OK(strstr(captured, "RQ03003") != NULL, "refusals are logged with their tag");
    RQ_OK(strstr(captured, SK) == NULL && strstr(captured, "tokSECRETvalue") == NULL,
          "no secret or token in any log line");
}

/* ---- the raw request parser ----------------------------------------------- */

static void test_reqfile(apr_pool_t *p)
{
    static const char text[] = "POST /a b/c?x=1 HTTP/1.1\r\nHost:h\r\nX-F:one\r\n  two\r\n"
                               "\r\nline1\nline2";
    rq_reqfile_t *req = NULL;
    const char *err = NULL;

    RQ_IS_INT(rq_reqfile_parse(&req, &err, p, text, sizeof(text) - 1), APR_SUCCESS,
              "CRLF request parses");
    if (!req) {
        return;
    }
    RQ_IS_STR(req->method, "POST", "method");
    RQ_IS_STR(req->target, "/a b/c?x=1", "target keeps its space");
    RQ_IS_STR(req->version, "HTTP/1.1", "version");
    RQ_IS_STR(rq_reqfile_header_get(req, "x-f"), "one\n  two", "folded value kept raw");
    RQ_IS_STR(req->body, "line1\nline2", "body kept whole");
    RQ_IS_INT(req->body_len, 11, "body length");

    RQ_IS_INT(rq_reqfile_parse(&req, &err, p, "GET /", 5), APR_EINVAL, "no version refused");
    RQ_IS_STR(err, "line 1: the request line must be METHOD TARGET HTTP/VERSION",
              "error names the request line");
    RQ_IS_INT(rq_reqfile_parse(&req, &err, p, "GET / HTTP/1.1\nHost h", 21), APR_EINVAL,
              "header without colon refused");
    RQ_IS_STR(err, "line 2: a header line must be Name:value with a valid name",
              "error names the line");
    RQ_IS_INT(rq_reqfile_parse(&req, &err, p, "GET / HTTP/1.1\n x", 17), APR_EINVAL,
              "folded line first refused");
    RQ_IS_INT(rq_reqfile_parse(&req, &err, p, "", 0), APR_EINVAL, "empty file refused");
}

int main(int argc, const char *const *argv)
{
    apr_pool_t *p;

    (void)argc;
    apr_app_initialize(&argc, &argv, NULL);
    apr_pool_create(&p, NULL);

    test_vectors(p, suite_dir(p, argv[0]));
    test_canonical_uri(p);
    test_canonical_query(p);
    test_canonical_headers(p);
    test_payload_hash();
    test_canonical_request_parts(p);
    test_dates(p);
    test_signing_key(p);
    test_signing_key_eviction(p);
    test_signing_key_threads(p);
    test_sign_checks(p);
    test_reqfile(p);

    apr_pool_destroy(p);
    apr_terminate();
    return rq_tap_done();
}
