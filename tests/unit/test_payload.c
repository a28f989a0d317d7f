/* Unit tests for lib/rq_payload.c: every refusal and the accepted forms. */
#include <string.h>

#include <apr_general.h>
#include <apr_strings.h>

#include "rq_log.h"
#include "rq_payload.h"
#include "rq_tap.h"

typedef struct refusal_t {
    const char *name;
    const char *body;
    apr_size_t len; /* 0: strlen(body) */
    const char *field;
    const char *message_part;
} refusal_t;

static const refusal_t refusals[] = {
    { "empty body", "", 0, NULL, "empty" },
    { "whitespace only", "  \n", 0, NULL, "not valid JSON" },
    { "malformed JSON", "{\"req_id\":", 0, NULL, "not valid JSON" },
    { "trailing garbage", "{\"req_id\":\"a\",\"user_id\":\"b\"} x", 0, NULL, "not valid JSON" },
    { "two objects", "{\"req_id\":\"a\",\"user_id\":\"b\"}{}", 0, NULL, "not valid JSON" },
    { "array", "[{\"req_id\":\"a\",\"user_id\":\"b\"}]", 0, NULL, "must be a JSON object" },
    { "string", "\"req_id\"", 0, NULL, "must be a JSON object" },
    { "number", "42", 0, NULL, "must be a JSON object" },
    { "null", "null", 0, NULL, "must be a JSON object" },
    { "invalid UTF-8 in a value", "{\"req_id\":\"a\",\"user_id\":\"b\",\"x\":\"\xc3\x28\"}", 0,
      NULL, "not valid UTF-8" },
    { "overlong UTF-8", "{\"req_id\":\"a\",\"user_id\":\"b\",\"x\":\"\xc0\xaf\"}", 0, NULL,
      "not valid UTF-8" },
    { "escaped NUL in a value", "{\"req_id\":\"a\",\"user_id\":\"b\",\"x\":\"a\\u0000b\"}", 0,
      NULL, "NUL" },
    { "escaped NUL in a key", "{\"req_id\":\"a\",\"user_id\":\"b\",\"k\\u0000\":1}", 0, NULL,
      "NUL" },
    { "raw NUL byte", "{\"req_id\":\"a\",\"user_id\":\"b\"}\0", 30, NULL, "NUL" },
    { "duplicate key", "{\"req_id\":\"a\",\"user_id\":\"b\",\"req_id\":\"c\"}", 0, "req_id",
      "duplicate key: \"req_id\"" },
    { "user_id '.'", "{\"req_id\":\"a\",\"user_id\":\".\"}", 0, "user_id",
      "user_id cannot be '.' or '..'" },
    { "user_id '..'", "{\"req_id\":\"a\",\"user_id\":\"..\"}", 0, "user_id",
      "user_id cannot be '.' or '..'" },
    { "user_id '..' escaped", "{\"req_id\":\"a\",\"user_id\":\".\\u002e\"}", 0, "user_id",
      "user_id cannot be '.' or '..'" },
    { "duplicate req_id written with an escape",
      "{\"req_id\":\"e1\",\"req_\\u0069d\":\"e2\",\"user_id\":\"b\"}", 0, "req_id",
      "duplicate key" },
    { "duplicate user_id written with escapes",
      "{\"user_id\":\"a\",\"req_id\":\"r\",\"\\u0075ser\\u005fid\":\"b\"}", 0, "user_id",
      "duplicate key" },
    { "duplicate of an escaped key that is no id",
      "{\"req_id\":\"a\",\"user_id\":\"b\",\"r\\u0065q\":1,\"req\":2}", 0, NULL,
      "duplicate key" },
    { "invalid UTF-8 in user_id named with an escape",
      "{\"req_id\":\"a\",\"user\\u005fid\":\"\xff\"}", 0, "user_id",
      "user_id is not valid UTF-8" },
    { "duplicate nested key", "{\"req_id\":\"a\",\"user_id\":\"b\",\"o\":{\"k\":1,\"k\":2}}",
      0, NULL, "duplicate key: \"k\"" },
    { "duplicate other key", "{\"a\":1,\"req_id\":\"a\",\"user_id\":\"b\",\"a\":2}", 0, NULL,
      "duplicate key: \"a\"" },
    { "invalid UTF-8 in req_id", "{\"req_id\":\"a\xff" "b\",\"user_id\":\"b\"}", 0, "req_id",
      "req_id is not valid UTF-8" },
    { "overlong UTF-8 in user_id", "{\"req_id\":\"a\",\"user_id\":\"\xc0\xaf\"}", 0, "user_id",
      "user_id is not valid UTF-8" },
    { "invalid UTF-8 in a key", "{\"req_id\":\"a\",\"k\xff\":1,\"user_id\":\"b\"}", 0, NULL,
      "the body is not valid UTF-8" },
    { "escaped NUL in req_id", "{\"req_id\":\"a\\u0000\",\"user_id\":\"b\"}", 0, "req_id",
      "req_id must not contain NUL" },
    { "raw NUL in user_id", "{\"req_id\":\"a\",\"user_id\":\"b\0c\"}", 30, "user_id",
      "user_id must not contain NUL" },
    { "huge integer", "{\"req_id\":\"a\",\"user_id\":\"b\",\"n\":99999999999999999999999}", 0,
      NULL, "out of range" },
    { "req_id missing", "{\"user_id\":\"b\"}", 0, "req_id", "req_id is missing" },
    { "req_id a number", "{\"req_id\":1,\"user_id\":\"b\"}", 0, "req_id",
      "req_id must be a string" },
    { "req_id null", "{\"req_id\":null,\"user_id\":\"b\"}", 0, "req_id",
      "req_id must be a string" },
    { "req_id an object", "{\"req_id\":{},\"user_id\":\"b\"}", 0, "req_id",
      "req_id must be a string" },
    { "req_id empty", "{\"req_id\":\"\",\"user_id\":\"b\"}", 0, "req_id",
      "req_id must not be empty" },
    { "req_id with a space", "{\"req_id\":\"a b\",\"user_id\":\"b\"}", 0, "req_id",
      "req_id may only contain" },
    { "req_id with a tab escape", "{\"req_id\":\"a\\tb\",\"user_id\":\"b\"}", 0, "req_id",
      "req_id may only contain" },
    { "req_id non-ASCII", "{\"req_id\":\"caf\xc3\xa9\",\"user_id\":\"b\"}", 0, "req_id",
      "req_id may only contain" },
    { "user_id missing", "{\"req_id\":\"a\"}", 0, "user_id", "user_id is missing" },
    { "user_id a boolean", "{\"req_id\":\"a\",\"user_id\":true}", 0, "user_id",
      "user_id must be a string" },
    { "user_id an array", "{\"req_id\":\"a\",\"user_id\":[\"b\"]}", 0, "user_id",
      "user_id must be a string" },
    { "user_id empty", "{\"req_id\":\"a\",\"user_id\":\"\"}", 0, "user_id",
      "user_id must not be empty" },
    { "user_id with DEL", "{\"req_id\":\"a\",\"user_id\":\"b\\u007f\"}", 0, "user_id",
      "user_id may only contain" },
    { NULL, NULL, 0, NULL, NULL }
};

static void refusal_check(apr_pool_t *p, const refusal_t *t)
{
    rq_payload_t *pl = (rq_payload_t *)1;
    rq_payload_error_t err = { "x", "x" };
    apr_size_t len = t->len ? t->len : strlen(t->body);
    apr_status_t rv = rq_payload_parse(&pl, &err, p, t->body, len);

    RQ_IS_INT(rv, RQ_PAYLOAD_EINVALID, "%s: refused", t->name);
    RQ_OK(pl == NULL, "%s: no payload", t->name);
    RQ_IS_STR(err.field, t->field, "%s: field", t->name);
    RQ_OK(err.message && strstr(err.message, t->message_part) != NULL,
          "%s: message mentions '%s' (%s)", t->name, t->message_part,
          err.message ? err.message : "(null)");
}

static const char *nested(apr_pool_t *p, int depth)
{
    char *open = apr_palloc(p, (apr_size_t)depth + 1);
    char *close = apr_palloc(p, (apr_size_t)depth + 1);

    memset(open, '[', (apr_size_t)depth);
    memset(close, ']', (apr_size_t)depth);
    open[depth] = close[depth] = '\0';
    return apr_pstrcat(p, "{\"req_id\":\"a\",\"user_id\":\"b\",\"deep\":", open, close, "}",
                       NULL);
}

static void test_depth(apr_pool_t *p)
{
    rq_payload_t *pl = NULL;
    rq_payload_error_t err;
    const char *ok_body = nested(p, RQ_PAYLOAD_DEPTH_MAX - 1);
    const char *deep = nested(p, RQ_PAYLOAD_DEPTH_MAX);
    const char *huge = nested(p, 5000);
    const char *in_string = "{\"req_id\":\"a\",\"user_id\":\"b\",\"s\":\"[[[[[[[[[[[[[[[[[[[["
                            "[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[\\\"{{{{{{{{{{{\"}";

    RQ_IS_INT(rq_payload_parse(&pl, &err, p, ok_body, strlen(ok_body)), APR_SUCCESS,
              "nesting up to the limit is accepted");
    RQ_IS_INT(rq_payload_parse(&pl, &err, p, deep, strlen(deep)), RQ_PAYLOAD_EINVALID,
              "nesting past the limit is refused");
    RQ_OK(err.field == NULL && strstr(err.message, "nested too deeply") != NULL,
          "deep nesting message: %s", err.message);
    RQ_IS_INT(rq_payload_parse(&pl, &err, p, huge, strlen(huge)), RQ_PAYLOAD_EINVALID,
              "nesting past jansson's own limit is refused");
    RQ_OK(strstr(err.message, "nested too deeply") != NULL, "same message: %s", err.message);
    RQ_IS_INT(rq_payload_parse(&pl, &err, p, in_string, strlen(in_string)), APR_SUCCESS,
              "brackets inside strings do not count as nesting");
}

static void test_lengths(apr_pool_t *p)
{
    char id128[129];
    char id129[130];
    rq_payload_t *pl = NULL;
    rq_payload_error_t err;
    const char *body;

    memset(id128, 'x', 128);
    id128[128] = '\0';
    memset(id129, 'y', 129);
    id129[129] = '\0';

    body = apr_psprintf(p, "{\"req_id\":\"%s\",\"user_id\":\"%s\"}", id128, id128);
    RQ_IS_INT(rq_payload_parse(&pl, &err, p, body, strlen(body)), APR_SUCCESS,
              "128-character ids are accepted");

    body = apr_psprintf(p, "{\"req_id\":\"%s\",\"user_id\":\"u\"}", id129);
    RQ_IS_INT(rq_payload_parse(&pl, &err, p, body, strlen(body)), RQ_PAYLOAD_EINVALID,
              "129-character req_id refused");
    RQ_IS_STR(err.field, "req_id", "field is req_id");
    RQ_IS_STR(err.message, "req_id must be at most 128 characters long", "length message");

    body = apr_psprintf(p, "{\"req_id\":\"r\",\"user_id\":\"%s\"}", id129);
    RQ_IS_INT(rq_payload_parse(&pl, &err, p, body, strlen(body)), RQ_PAYLOAD_EINVALID,
              "129-character user_id refused");
    RQ_IS_STR(err.field, "user_id", "field is user_id");
}

static void accept_check(apr_pool_t *p, const char *name, const char *body, const char *req,
                         const char *user, const char *json)
{
    rq_payload_t *pl = NULL;
    rq_payload_error_t err = { NULL, NULL };

    RQ_IS_INT(rq_payload_parse(&pl, &err, p, body, strlen(body)), APR_SUCCESS,
              "%s: accepted (%s)", name, err.message ? err.message : "");
    RQ_IS_STR(pl ? pl->req_id : NULL, req, "%s: req_id", name);
    RQ_IS_STR(pl ? pl->user_id : NULL, user, "%s: user_id", name);
    RQ_IS_STR(pl ? pl->json : NULL, json, "%s: compact JSON, keys in order", name);
}

static void test_accepted(apr_pool_t *p)
{
    accept_check(p, "minimal", "{\"req_id\":\"r1\",\"user_id\":\"u1\"}", "r1", "u1",
                 "{\"req_id\":\"r1\",\"user_id\":\"u1\"}");
    accept_check(p, "whitespace and order kept",
                 " {\n \"user_id\" : \"u\",\t\"z\": [1, 2, {\"a\": null}],\n"
                 " \"req_id\": \"r\", \"b\": true } \n",
                 "r", "u", "{\"user_id\":\"u\",\"z\":[1,2,{\"a\":null}],\"req_id\":\"r\","
                 "\"b\":true}");
    accept_check(p, "every punctuation SQS allows",
                 "{\"req_id\":\"!\\\"#$%&'()*+,-./:;<=>?@[\\\\]^_`{|}~\",\"user_id\":\"A-z_0.9\"}",
                 "!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~", "A-z_0.9",
                 "{\"req_id\":\"!\\\"#$%&'()*+,-./:;<=>?@[\\\\]^_`{|}~\",\"user_id\":\"A-z_0.9\"}");
    accept_check(p, "UTF-8 in other fields",
                 "{\"req_id\":\"r\",\"user_id\":\"u\",\"name\":\"Zo\xc3\xab \xe2\x82\xac\"}", "r",
                 "u", "{\"req_id\":\"r\",\"user_id\":\"u\",\"name\":\"Zo\xc3\xab \xe2\x82\xac\"}");
    accept_check(p, "escaped ids", "{\"req_id\":\"\\u0041b\",\"user_id\":\"\\/u\"}", "Ab", "/u",
                 "{\"req_id\":\"Ab\",\"user_id\":\"/u\"}");
}

static void test_check_id(apr_pool_t *p)
{
    rq_payload_error_t err;

    RQ_IS_INT(rq_payload_check_id(&err, p, "user_id", "bob", 3), APR_SUCCESS,
              "check_id accepts a plain id");
    RQ_IS_INT(rq_payload_check_id(&err, p, "user_id", "b b", 3), RQ_PAYLOAD_EINVALID,
              "check_id refuses a space");
    RQ_IS_STR(err.field, "user_id", "check_id names the field");
    RQ_IS_INT(rq_payload_check_id(&err, p, "user_id", ".", 1), RQ_PAYLOAD_EINVALID,
              "check_id refuses user_id '.'");
    RQ_IS_STR(err.message, "user_id cannot be '.' or '..'", "check_id says why '.'");
    RQ_IS_INT(rq_payload_check_id(&err, p, "user_id", "..", 2), RQ_PAYLOAD_EINVALID,
              "check_id refuses user_id '..'");
    RQ_IS_STR(err.field, "user_id", "check_id names user_id for '..'");
    RQ_IS_INT(rq_payload_check_id(&err, p, "user_id", "...", 3), APR_SUCCESS,
              "check_id accepts user_id '...'");
    RQ_IS_INT(rq_payload_check_id(&err, p, "user_id", ".a", 2), APR_SUCCESS,
              "check_id accepts user_id '.a'");
    RQ_IS_INT(rq_payload_check_id(&err, p, "req_id", "..", 2), APR_SUCCESS,
              "check_id accepts req_id '..'");
}

int main(void)
{
    apr_pool_t *p;
    int i;

    apr_initialize();
    apr_pool_create(&p, NULL);
    rq_log_set_level(RQ_LOG_EMERG);

    for (i = 0; refusals[i].name; i++) {
        refusal_check(p, &refusals[i]);
    }
    test_depth(p);
    test_lengths(p);
    test_accepted(p);
    test_check_id(p);

    apr_pool_destroy(p);
    apr_terminate();
    return rq_tap_done();
}
