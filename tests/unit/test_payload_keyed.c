/* Unit tests for rq_payload_parse_keyed: ids from an Idempotency-Key or made. */
#include <string.h>

#include <apr_general.h>
#include <apr_hash.h>
#include <apr_strings.h>

#include "rq_log.h"
#include "rq_payload.h"
#include "rq_tap.h"

typedef struct keyed_case_t {
    const char *name;
    const char *body;
    const char *key;
    int generate;
    apr_status_t rv;
    const char *req_id; /* expected id; "*" for a generated UUID */
    const char *json;   /* expected compact JSON; "*" when req_id is "*" */
    const char *field;  /* on refusal */
    const char *message_part;
} keyed_case_t;

static const keyed_case_t cases[] = {
    { "key only", "{\"user_id\":\"u\",\"n\":1}", "k1", 0, APR_SUCCESS, "k1",
      "{\"req_id\":\"k1\",\"user_id\":\"u\",\"n\":1}", NULL, NULL },
    { "key equal to the body's", "{\"user_id\":\"u\",\"req_id\":\"k1\"}", "k1", 0, APR_SUCCESS,
      "k1", "{\"user_id\":\"u\",\"req_id\":\"k1\"}", NULL, NULL },
    { "body only", "{\"req_id\":\"r\",\"user_id\":\"u\"}", NULL, 0, APR_SUCCESS, "r",
      "{\"req_id\":\"r\",\"user_id\":\"u\"}", NULL, NULL },
    { "body id kept when generating", "{\"req_id\":\"r\",\"user_id\":\"u\"}", NULL, 1,
      APR_SUCCESS, "r", "{\"req_id\":\"r\",\"user_id\":\"u\"}", NULL, NULL },
    { "key preferred to generating", "{\"user_id\":\"u\"}", "k2", 1, APR_SUCCESS, "k2",
      "{\"req_id\":\"k2\",\"user_id\":\"u\"}", NULL, NULL },
    { "generated", "{\"user_id\":\"u\",\"x\":[true]}", NULL, 1, APR_SUCCESS, "*", "*", NULL,
      NULL },
    { "key differs from the body's", "{\"req_id\":\"r\",\"user_id\":\"u\"}", "k", 0,
      RQ_PAYLOAD_EINVALID, NULL, NULL, "req_id", "differs from the Idempotency-Key" },
    { "key with a space", "{\"user_id\":\"u\"}", "a b", 0, RQ_PAYLOAD_EINVALID, NULL, NULL,
      "req_id", "Idempotency-Key header is not a valid req_id" },
    { "empty key", "{\"user_id\":\"u\"}", "", 1, RQ_PAYLOAD_EINVALID, NULL, NULL, "req_id",
      "must not be empty" },
    { "key with a non-ASCII letter", "{\"user_id\":\"u\"}", "caf\xc3\xa9", 0,
      RQ_PAYLOAD_EINVALID, NULL, NULL, "req_id", "no spaces" },
    { "bad key, good body id", "{\"req_id\":\"r\",\"user_id\":\"u\"}", "r\x01", 0,
      RQ_PAYLOAD_EINVALID, NULL, NULL, "req_id", "Idempotency-Key" },
    { "bad body id, good key", "{\"req_id\":7,\"user_id\":\"u\"}", "k", 0, RQ_PAYLOAD_EINVALID,
      NULL, NULL, "req_id", "req_id must be a string" },
    { "no id, no key, no generation", "{\"user_id\":\"u\"}", NULL, 0, RQ_PAYLOAD_EINVALID,
      NULL, NULL, "req_id", "req_id is missing" },
    { "user_id still required", "{\"user\":\"u\"}", "k", 1, RQ_PAYLOAD_EINVALID, NULL, NULL,
      "user_id", "user_id is missing" },
    { "body still checked first", "[1]", "k", 1, RQ_PAYLOAD_EINVALID, NULL, NULL, NULL,
      "must be a JSON object" },
    { NULL, NULL, NULL, 0, 0, NULL, NULL, NULL, NULL }
};

static int uuid_like(const char *s)
{
    int i;

    if (!s || strlen(s) != 36) {
        return 0;
    }
    for (i = 0; i < 36; i++) {
        int dash = i == 8 || i == 13 || i == 18 || i == 23;

        if (dash ? s[i] != '-' : !strchr("0123456789abcdef", s[i])) {
            return 0;
        }
    }
    return 1;
}

static void case_check(apr_pool_t *p, const keyed_case_t *t)
{
    rq_payload_t *pl = NULL;
    rq_payload_error_t err = { NULL, NULL };
    rq_payload_idsrc_t src = { t->key, t->generate };
    apr_status_t rv;

    rv = rq_payload_parse_keyed(&pl, &err, p, t->body, strlen(t->body), &src);
    RQ_IS_INT(rv, t->rv, "%s: status (%s)", t->name, err.message ? err.message : "");
    if (t->rv != APR_SUCCESS) {
        RQ_OK(pl == NULL, "%s: no payload", t->name);
        RQ_IS_STR(err.field, t->field, "%s: field", t->name);
        RQ_OK(err.message && strstr(err.message, t->message_part), "%s: message has '%s'",
              t->name, t->message_part);
        return;
    }
    if (strcmp(t->req_id, "*") == 0) {
        const char *want;

        RQ_OK(pl && uuid_like(pl->req_id), "%s: a UUID (%s)", t->name, pl ? pl->req_id : "");
        want = apr_pstrcat(p, "{\"req_id\":\"", pl ? pl->req_id : "", "\",",
                           t->body + 1, NULL);
        RQ_IS_STR(pl ? pl->json : NULL, want, "%s: the UUID is the first member", t->name);
        return;
    }
    RQ_IS_STR(pl ? pl->req_id : NULL, t->req_id, "%s: req_id", t->name);
    RQ_IS_STR(pl ? pl->user_id : NULL, "u", "%s: user_id", t->name);
    RQ_IS_STR(pl ? pl->json : NULL, t->json, "%s: JSON", t->name);
}

/* Ids made one after another are all different. */
static void test_unique(apr_pool_t *p)
{
    rq_payload_idsrc_t src = { NULL, 1 };
    apr_hash_t *seen = apr_hash_make(p);
    int dup = 0;
    int i;

    for (i = 0; i < 1000; i++) {
        rq_payload_t *pl = NULL;
        rq_payload_error_t err;

        if (rq_payload_parse_keyed(&pl, &err, p, "{\"user_id\":\"u\"}", 15, &src) !=
            APR_SUCCESS) {
            dup++;
            continue;
        }
        if (apr_hash_get(seen, pl->req_id, APR_HASH_KEY_STRING)) {
            dup++;
        }
        apr_hash_set(seen, pl->req_id, APR_HASH_KEY_STRING, "");
    }
    RQ_IS_INT(dup, 0, "1000 generated ids are distinct");
    RQ_IS_INT(apr_hash_count(seen), 1000, "and 1000 were made");
}

int main(void)
{
    apr_pool_t *p;
    int i;

    apr_initialize();
    apr_pool_create(&p, NULL);
    rq_log_set_level(RQ_LOG_EMERG);

    for (i = 0; cases[i].name; i++) {
        case_check(p, &cases[i]);
    }
    test_unique(p);

    apr_pool_destroy(p);
    apr_terminate();
    return rq_tap_done();
}
