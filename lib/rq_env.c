/* .env files and environment lookups; see rq_env.h for the accepted syntax. */
#include <stdlib.h>
#include <string.h>

#include <apr_file_io.h>
#include <apr_strings.h>

#include "rq_env.h"

static int is_blank(char c)
{
    return c == ' ' || c == '\t';
}

static const char *skip_blanks(const char *s)
{
    while (is_blank(*s)) {
        s++;
    }
    return s;
}

static int is_key_start(char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || c == '_';
}

static int is_key_char(char c)
{
    return is_key_start(c) || (c >= '0' && c <= '9');
}

/* After a closing quote only blanks and a comment may follow. */
static const char *check_tail(const char *s)
{
    s = skip_blanks(s);
    if (*s != '\0' && *s != '#') {
        return "unexpected text after the closing quote";
    }
    if (*s == '#' && !is_blank(s[-1])) {
        return "a comment after a quoted value needs a space before '#'";
    }
    return NULL;
}

static const char *parse_single(const char **pval, apr_pool_t *p, const char *s)
{
    const char *end = strchr(s + 1, '\'');

    if (!end) {
        return "unterminated single quote (values end at the end of the line)";
    }
    *pval = apr_pstrmemdup(p, s + 1, end - s - 1);
    return check_tail(end + 1);
}

static const char *parse_double(const char **pval, apr_pool_t *p, const char *s)
{
    char *out = apr_palloc(p, strlen(s) + 1);
    char *o = out;

    for (s++; *s && *s != '"'; s++) {
        if (*s == '\\' && (s[1] == 'n' || s[1] == '"' || s[1] == '\\')) {
            s++;
            *o++ = (*s == 'n') ? '\n' : *s;
            continue;
        }
        *o++ = *s;
    }
    if (*s != '"') {
        return "unterminated double quote (values end at the end of the line)";
    }
    *o = '\0';
    *pval = out;
    return check_tail(s + 1);
}

/*
 * An unquoted value: up to a "#" that follows a blank, trailing blanks cut.
 * s[-1] is always readable: it is at least the '='.
 */
static void parse_bare(const char **pval, apr_pool_t *p, const char *s)
{
    const char *end = s;

    while (*end && !(*end == '#' && is_blank(end[-1]))) {
        end++;
    }
    while (end > s && is_blank(end[-1])) {
        end--;
    }
    *pval = apr_pstrmemdup(p, s, end - s);
}

static const char *parse_value(const char **pval, apr_pool_t *p, const char *s)
{
    const char *v = skip_blanks(s);

    if (*v == '\'') {
        return parse_single(pval, p, v);
    }
    if (*v == '"') {
        return parse_double(pval, p, v);
    }
    parse_bare(pval, p, v);
    return NULL;
}

/*
 * Parses one line (without its newline). Returns NULL and sets *pkey to NULL
 * for a line without an assignment, else the reason the line is invalid.
 */
static const char *parse_line(const char **pkey, const char **pval, apr_pool_t *p,
                              const char *line)
{
    const char *s = skip_blanks(line);
    const char *key;

    *pkey = NULL;
    if (*s == '\0' || *s == '#') {
        return NULL;
    }
    if (strncmp(s, "export", 6) == 0 && is_blank(s[6])) {
        s = skip_blanks(s + 6);
    }
    if (!is_key_start(*s)) {
        return "expected KEY=VALUE, where KEY is letters, digits and '_'";
    }

    key = s;
    while (is_key_char(*s)) {
        s++;
    }
    *pkey = apr_pstrmemdup(p, key, s - key);
    s = skip_blanks(s);
    if (*s != '=') {
        *pkey = NULL;
        return "expected '=' after the variable name";
    }
    return parse_value(pval, p, s + 1);
}

apr_status_t rq_env_parse(rq_env_t **penv, const char **perr, apr_pool_t *p, const char *text,
                          apr_size_t len, const char *name)
{
    rq_env_t *env = apr_pcalloc(p, sizeof(*env));
    const char *end = text + len;
    const char *key, *val, *why;
    char *line;
    int lineno = 0;

    env->path = apr_pstrdup(p, name);
    env->vars = apr_hash_make(p);
    while (text < end) {
        const char *nl = memchr(text, '\n', end - text);
        apr_size_t n = nl ? (apr_size_t)(nl - text) : (apr_size_t)(end - text);

        lineno++;
        if (memchr(text, '\0', n) != NULL) {
            *perr = apr_psprintf(p, "%s:%d: the line contains a NUL byte", name, lineno);
            return RQ_ENV_ESYNTAX;
        }
        line = apr_pstrmemdup(p, text, n);
        text += n + 1;
        if (n > 0 && line[n - 1] == '\r') {
            line[n - 1] = '\0';
        }

        why = parse_line(&key, &val, p, line);
        if (why) {
            *perr = apr_psprintf(p, "%s:%d: %s", name, lineno, why);
            return RQ_ENV_ESYNTAX;
        }
        if (key) {
            apr_hash_set(env->vars, key, APR_HASH_KEY_STRING, val);
        }
    }
    *penv = env;
    return APR_SUCCESS;
}

apr_status_t rq_file_read_all(char **pbuf, apr_size_t *plen, apr_pool_t *p, const char *path,
                              apr_size_t max)
{
    apr_file_t *f;
    apr_finfo_t fi;
    apr_size_t len;
    apr_status_t rv;
    char *buf;

    rv = apr_file_open(&f, path, APR_FOPEN_READ, APR_OS_DEFAULT, p);
    if (rv != APR_SUCCESS) {
        return rv;
    }
    rv = apr_file_info_get(&fi, APR_FINFO_SIZE, f);
    if (rv == APR_SUCCESS && (apr_size_t)fi.size > max) {
        rv = APR_EINVAL;
    }
    if (rv != APR_SUCCESS) {
        apr_file_close(f);
        return rv;
    }

    len = (apr_size_t)fi.size;
    buf = apr_palloc(p, len + 1);
    rv = len ? apr_file_read_full(f, buf, len, &len) : APR_SUCCESS;
    apr_file_close(f);
    if (rv != APR_SUCCESS) {
        return rv;
    }
    buf[len] = '\0';
    *pbuf = buf;
    *plen = len;
    return APR_SUCCESS;
}

apr_status_t rq_env_read(rq_env_t **penv, const char **perr, apr_pool_t *p, const char *path)
{
    apr_size_t len;
    apr_status_t rv;
    char *buf;

    rv = rq_file_read_all(&buf, &len, p, path, RQ_SETTINGS_FILE_MAX);
    if (rv == APR_EINVAL) {
        *perr = apr_psprintf(p, "the .env file %s is larger than %d bytes", path,
                             RQ_SETTINGS_FILE_MAX);
        return rv;
    }
    if (rv != APR_SUCCESS) {
        *perr = apr_psprintf(p, "cannot read the .env file %s: %pm", path, &rv);
        return rv;
    }
    return rq_env_parse(penv, perr, p, buf, len, path);
}

const char *rq_env_file_get(const rq_env_t *env, const char *key)
{
    const char *v;

    if (!env) {
        return NULL;
    }
    v = apr_hash_get(env->vars, key, APR_HASH_KEY_STRING);
    return (v && *v) ? v : NULL;
}

const char *rq_env_get(const rq_env_t *env, const char *key)
{
    const char *v = getenv(key);

    if (v && *v) {
        return v;
    }
    return rq_env_file_get(env, key);
}
