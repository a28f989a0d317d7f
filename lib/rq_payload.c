/*
 * Parsing and validation of the toy endpoint's request object.
 *
 * jansson does the parsing; the checks it cannot do alone (a nesting limit
 * far below its built-in 2048, raw NUL bytes, the id rules of SQS) are done
 * here, so every refusal carries a short sentence and the field at fault.
 */
#include <string.h>

#include <apr_strings.h>
#include <apr_uuid.h>
#include <jansson.h>

#include "rq_log.h"
#include "rq_payload.h"

static apr_status_t payload_refuse(rq_payload_error_t *err, const char *field,
                                   const char *message)
{
    err->field = field;
    err->message = message;
    return RQ_PAYLOAD_EINVALID;
}

static apr_status_t json_release(void *data)
{
    json_decref((json_t *)data);
    return APR_SUCCESS;
}

/*
 * Measures the deepest nesting of arrays and objects without building
 * anything, so a hostile body never makes jansson allocate thousands of
 * levels. Strings are skipped with their escapes; the scan does not judge
 * syntax, jansson does that afterwards.
 */
static int body_depth_exceeds(const char *body, apr_size_t len, int limit)
{
    apr_size_t i;
    int depth = 0;
    int in_string = 0;

    for (i = 0; i < len; i++) {
        char c = body[i];

        if (in_string) {
            if (c == '\\') {
                i++;
            }
            else if (c == '"') {
                in_string = 0;
            }
            continue;
        }
        if (c == '"') {
            in_string = 1;
        }
        else if (c == '[' || c == '{') {
            if (++depth > limit) {
                return 1;
            }
        }
        else if ((c == ']' || c == '}') && depth > 0) {
            depth--;
        }
    }
    return 0;
}

static const char *syntax_message(apr_pool_t *p, const json_error_t *jerr)
{
    return apr_psprintf(p, "the body is not valid JSON: %s at line %d, column %d", jerr->text,
                        jerr->line, jerr->column);
}

/* jansson says "duplicate object key near '"k"'"; the key is what helps. */
static const char *duplicate_message(apr_pool_t *p, const json_error_t *jerr)
{
    const char *near = strstr(jerr->text, "near '");
    apr_size_t len;

    if (!near) {
        return "the body has a duplicate key";
    }
    near += strlen("near '");
    len = strlen(near);
    if (len > 0 && near[len - 1] == '\'') {
        len--;
    }
    return apr_psprintf(p, "the body has a duplicate key: %.*s", (int)len, near);
}

static const char *id_field_name(const char *s, apr_size_t len)
{
    if (s && len == 6 && memcmp(s, "req_id", 6) == 0) {
        return "req_id";
    }
    if (s && len == 7 && memcmp(s, "user_id", 7) == 0) {
        return "user_id";
    }
    return NULL;
}

/* The id a raw key (JSON string text without its quotes) names, escapes decoded. */
static const char *id_key_name(const char *s, apr_size_t len)
{
    char quoted[64];
    const char *name = NULL;
    json_t *v;

    if (!s || !memchr(s, '\\', len)) {
        return id_field_name(s, len);
    }
    if (len + 2 > sizeof(quoted)) {
        return NULL; /* longer than "user_id" with every character escaped */
    }

    quoted[0] = '"';
    memcpy(quoted + 1, s, len);
    quoted[len + 1] = '"';
    v = json_loadb(quoted, len + 2, JSON_DECODE_ANY, NULL);
    if (v && json_is_string(v)) {
        name = id_field_name(json_string_value(v), json_string_length(v));
    }
    json_decref(v);
    return name;
}

/*
 * Which id a refusal at byte pos belongs to: the top-level member whose value
 * holds pos (want_key 0), or the top-level key just read (want_key 1, for
 * duplicates). NULL when it is neither req_id nor user_id.
 */
static const char *field_at(const char *body, apr_size_t len, apr_size_t pos, int want_key)
{
    const char *str = NULL;
    const char *key = NULL;
    apr_size_t str_len = 0;
    apr_size_t key_len = 0;
    apr_size_t start = 0;
    apr_size_t i;
    int depth = 0;
    int in_string = 0;

    for (i = 0; i < len && i < pos; i++) {
        char c = body[i];

        if (in_string) {
            if (c == '\\') {
                i++;
            }
            else if (c == '"') {
                in_string = 0;
                str = depth == 1 ? body + start : str;
                str_len = depth == 1 ? i - start : str_len;
            }
            continue;
        }
        if (c == '"') {
            in_string = 1;
            start = i + 1;
        }
        else if (c == '{' || c == '[') {
            depth++;
        }
        else if (c == '}' || c == ']') {
            depth--;
        }
        else if (c == ':' && depth == 1) {
            key = str;
            key_len = str_len;
        }
        else if (c == ',' && depth == 1) {
            key = NULL;
        }
    }
    if (depth != 1) {
        return NULL;
    }
    if (want_key) {
        return in_string ? NULL : id_key_name(str, str_len);
    }
    return id_key_name(key, key_len);
}

static apr_status_t nul_refuse(rq_payload_error_t *err, apr_pool_t *p, const char *field)
{
    if (field) {
        return payload_refuse(err, field,
                              apr_pstrcat(p, field, " must not contain NUL characters", NULL));
    }
    return payload_refuse(err, NULL, "the body must not contain NUL characters (\\u0000)");
}

static apr_status_t load_refuse(rq_payload_error_t *err, apr_pool_t *p, const char *body,
                                apr_size_t len, const json_error_t *jerr)
{
    apr_size_t pos = jerr->position > 0 ? (apr_size_t)jerr->position : 0;
    const char *field;

    switch (json_error_code(jerr)) {
    case json_error_invalid_utf8:
        field = field_at(body, len, pos, 0);
        return payload_refuse(err, field, field ? apr_pstrcat(p, field, " is not valid UTF-8",
                                                              NULL)
                                                : "the body is not valid UTF-8");
    case json_error_null_character:
    case json_error_null_byte_in_key:
        return nul_refuse(err, p, field_at(body, len, pos, 0));
    case json_error_duplicate_key:
        return payload_refuse(err, field_at(body, len, pos, 1), duplicate_message(p, jerr));
    case json_error_stack_overflow:
        return payload_refuse(err, NULL, "the body is nested too deeply");
    case json_error_numeric_overflow:
        return payload_refuse(err, NULL,
                              apr_psprintf(p, "the body has a number out of range: %s",
                                           jerr->text));
    default:
        return payload_refuse(err, NULL, syntax_message(p, jerr));
    }
}

/* SQS accepts printable ASCII without the space in group and dedup ids. */
static int id_char_ok(unsigned char c)
{
    return c >= 0x21 && c <= 0x7e;
}

apr_status_t rq_payload_check_id(rq_payload_error_t *err, apr_pool_t *p, const char *field,
                                 const char *value, apr_size_t len)
{
    apr_size_t i;

    err->field = NULL;
    err->message = NULL;
    if (len == 0) {
        return payload_refuse(err, field, apr_pstrcat(p, field, " must not be empty", NULL));
    }
    if (len > RQ_PAYLOAD_ID_MAX) {
        return payload_refuse(err, field,
                              apr_pstrcat(p, field, " must be at most 128 characters long",
                                          NULL));
    }
    for (i = 0; i < len; i++) {
        if (!id_char_ok((unsigned char)value[i])) {
            return payload_refuse(err, field,
                                  apr_pstrcat(p, field, " may only contain letters, digits "
                                              "and ASCII punctuation (no spaces)", NULL));
        }
    }

    /* httpd removes the dot segments of /users/./ and /users/../: unreadable. */
    if (strcmp(field, "user_id") == 0 && value[0] == '.' &&
        (len == 1 || (len == 2 && value[1] == '.'))) {
        return payload_refuse(err, field, "user_id cannot be '.' or '..'");
    }
    return APR_SUCCESS;
}

static apr_status_t id_get(const char **pvalue, rq_payload_error_t *err, apr_pool_t *p,
                           json_t *root, const char *field)
{
    json_t *v = json_object_get(root, field);
    apr_status_t rv;

    *pvalue = NULL;
    if (!v) {
        return payload_refuse(err, field, apr_pstrcat(p, field, " is missing", NULL));
    }
    if (!json_is_string(v)) {
        return payload_refuse(err, field, apr_pstrcat(p, field, " must be a string", NULL));
    }

    rv = rq_payload_check_id(err, p, field, json_string_value(v), json_string_length(v));
    if (rv != APR_SUCCESS) {
        return rv;
    }

    *pvalue = json_string_value(v);
    return APR_SUCCESS;
}

static apr_status_t body_load(json_t **proot, rq_payload_error_t *err, apr_pool_t *p,
                              const char *body, apr_size_t len)
{
    json_error_t jerr;
    const char *nul;
    json_t *root;

    *proot = NULL;
    if (len == 0) {
        return payload_refuse(err, NULL, "the body is empty");
    }
    nul = memchr(body, '\0', len);
    if (nul) {
        return nul_refuse(err, p, field_at(body, len, (apr_size_t)(nul - body) + 1, 0));
    }
    if (body_depth_exceeds(body, len, RQ_PAYLOAD_DEPTH_MAX)) {
        return payload_refuse(err, NULL, "the body is nested too deeply");
    }

    root = json_loadb(body, len, JSON_REJECT_DUPLICATES | JSON_DECODE_ANY, &jerr);
    if (!root) {
        return load_refuse(err, p, body, len, &jerr);
    }
    apr_pool_cleanup_register(p, root, json_release, apr_pool_cleanup_null);

    if (!json_is_object(root)) {
        return payload_refuse(err, NULL, "the body must be a JSON object");
    }
    *proot = root;
    return APR_SUCCESS;
}

static apr_status_t compact_dump(const char **pjson, apr_pool_t *p, json_t *root)
{
    char *s = json_dumps(root, JSON_PRESERVE_ORDER | JSON_COMPACT);

    if (!s) {
        return APR_ENOMEM;
    }
    *pjson = apr_pstrdup(p, s);
    free(s);
    return APR_SUCCESS;
}

/* The key of an Idempotency-Key header must be a valid req_id itself. */
static apr_status_t key_check(rq_payload_error_t *err, apr_pool_t *p, const char *key)
{
    if (rq_payload_check_id(err, p, "req_id", key, strlen(key)) != APR_SUCCESS) {
        return payload_refuse(err, "req_id",
                              apr_pstrcat(p, "the Idempotency-Key header is not a valid "
                                          "req_id: ", err->message, NULL));
    }
    return APR_SUCCESS;
}

/* A new object holding req_id first, then every member of root in order. */
static apr_status_t id_insert(json_t **proot, apr_pool_t *p, const char *id)
{
    json_t *o = json_object();

    if (!o || json_object_set_new(o, "req_id", json_string(id)) ||
        json_object_update(o, *proot)) {
        json_decref(o);
        return APR_ENOMEM;
    }
    apr_pool_cleanup_register(p, o, json_release, apr_pool_cleanup_null);
    *proot = o;
    return APR_SUCCESS;
}

static const char *id_generate(apr_pool_t *p)
{
    char *s = apr_palloc(p, APR_UUID_FORMATTED_LENGTH + 1);
    apr_uuid_t uuid;

    apr_uuid_get(&uuid);
    apr_uuid_format(s, &uuid);
    return s;
}

/* Settles req_id from the body, the key or a new id; may replace *proot. */
static apr_status_t req_id_settle(const char **pid, rq_payload_error_t *err, apr_pool_t *p,
                                  json_t **proot, const rq_payload_idsrc_t *src)
{
    const char *id = NULL;
    apr_status_t rv;

    if (src && src->key) {
        rv = key_check(err, p, src->key);
        if (rv != APR_SUCCESS) {
            return rv;
        }
    }

    if (!src || json_object_get(*proot, "req_id") || (!src->key && !src->generate)) {
        rv = id_get(pid, err, p, *proot, "req_id");
        if (rv == APR_SUCCESS && src && src->key && strcmp(*pid, src->key) != 0) {
            rv = payload_refuse(err, "req_id", "req_id in the body differs from the "
                                "Idempotency-Key header");
        }
        return rv;
    }

    id = src->key ? src->key : id_generate(p);
    rv = id_insert(proot, p, id);
    if (rv != APR_SUCCESS) {
        err->message = "the body could not be encoded again";
        return rv;
    }
    *pid = json_string_value(json_object_get(*proot, "req_id"));
    return APR_SUCCESS;
}

static apr_status_t payload_build(rq_payload_t **ppl, rq_payload_error_t *err, apr_pool_t *p,
                                  const char *body, apr_size_t len,
                                  const rq_payload_idsrc_t *src)
{
    rq_payload_t *pl = apr_pcalloc(p, sizeof(*pl));
    json_t *root;
    apr_status_t rv;

    *ppl = NULL;
    err->field = NULL;
    err->message = NULL;

    rv = body_load(&root, err, p, body, len);
    if (rv != APR_SUCCESS) {
        goto out;
    }

    rv = req_id_settle(&pl->req_id, err, p, &root, src);
    if (rv != APR_SUCCESS) {
        goto out;
    }

    rv = id_get(&pl->user_id, err, p, root, "user_id");
    if (rv != APR_SUCCESS) {
        goto out;
    }

    rv = compact_dump(&pl->json, p, root);
    if (rv != APR_SUCCESS) {
        err->message = "the body could not be encoded again";
        goto out;
    }
    *ppl = pl;

out:
    if (rv != APR_SUCCESS) {
        rq_log_perror(RQ_LOG_MARK, RQ_LOG_DEBUG, APR_SUCCESS, p,
                      "RQ01001: request body refused (field %s): %s",
                      err->field ? err->field : "none", err->message);
    }
    return rv;
}

apr_status_t rq_payload_parse(rq_payload_t **ppl, rq_payload_error_t *err, apr_pool_t *p,
                              const char *body, apr_size_t len)
{
    return payload_build(ppl, err, p, body, len, NULL);
}

apr_status_t rq_payload_parse_keyed(rq_payload_t **ppl, rq_payload_error_t *err,
                                    apr_pool_t *p, const char *body, apr_size_t len,
                                    const rq_payload_idsrc_t *src)
{
    return payload_build(ppl, err, p, body, len, src);
}
