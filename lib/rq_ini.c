/* The AWS shared credentials and config files; see rq_ini.h. */
#include <string.h>

#include <apr_strings.h>

#include "rq_env.h"
#include "rq_ini.h"

typedef struct ini_parser_t {
    rq_ini_t *ini;
    apr_pool_t *p;
    apr_table_t *section; /* NULL before the first header */
    int in_block;         /* after "key =" with an empty value */
} ini_parser_t;

static int is_blank(char c)
{
    return c == ' ' || c == '\t';
}

static char *trim(char *s)
{
    char *end;

    while (is_blank(*s)) {
        s++;
    }
    end = s + strlen(s);
    while (end > s && is_blank(end[-1])) {
        *--end = '\0';
    }
    return s;
}

/* "profile   name" is the same section as "profile name". */
static const char *section_name(apr_pool_t *p, char *name)
{
    name = trim(name);
    if (strncmp(name, "profile", 7) == 0 && is_blank(name[7])) {
        return apr_pstrcat(p, "profile ", trim(name + 8), NULL);
    }
    return apr_pstrdup(p, name);
}

static const char *parse_header(ini_parser_t *ps, char *s)
{
    char *close = strchr(s, ']');
    const char *name, *rest;

    if (!close) {
        return "a section header needs a closing ']'";
    }
    *close = '\0';
    rest = trim(close + 1);
    if (*rest != '\0' && *rest != '#' && *rest != ';') {
        return "unexpected text after the section header";
    }

    name = section_name(ps->p, s + 1);
    if (*name == '\0') {
        return "empty section name";
    }
    ps->section = apr_hash_get(ps->ini->sections, name, APR_HASH_KEY_STRING);
    if (!ps->section) {
        ps->section = apr_table_make(ps->p, 8);
        apr_hash_set(ps->ini->sections, name, APR_HASH_KEY_STRING, ps->section);
    }
    ps->in_block = 0;
    return NULL;
}

/* Cuts a "#" or ";" comment that follows whitespace. */
static void cut_comment(char *v)
{
    char *c;

    for (c = v; *c; c++) {
        if ((*c == '#' || *c == ';') && c > v && is_blank(c[-1])) {
            *c = '\0';
            return;
        }
    }
}

static const char *parse_pair(ini_parser_t *ps, char *s)
{
    char *eq = strchr(s, '=');
    char *key, *val;

    if (!eq) {
        return "expected 'key = value' or a [section] header";
    }
    if (!ps->section) {
        return "a setting before the first [section] header";
    }
    *eq = '\0';
    key = trim(s);
    if (*key == '\0') {
        return "a setting without a name";
    }

    val = eq + 1;
    cut_comment(val);
    val = trim(val);
    apr_table_set(ps->section, key, val);
    ps->in_block = (*val == '\0');
    return NULL;
}

static const char *parse_line(ini_parser_t *ps, char *line)
{
    char *s = trim(line);

    if (*s == '\0' || *s == '#' || *s == ';') {
        return NULL;
    }
    if (is_blank(*line) && ps->in_block) {
        return NULL;
    }
    if (*s == '[') {
        return parse_header(ps, s);
    }
    ps->in_block = 0;
    return parse_pair(ps, s);
}

apr_status_t rq_ini_parse(rq_ini_t **pini, const char **perr, apr_pool_t *p, const char *text,
                          apr_size_t len, const char *name)
{
    ini_parser_t ps = { NULL, p, NULL, 0 };
    const char *end = text + len;
    const char *why;
    int lineno = 0;

    ps.ini = apr_pcalloc(p, sizeof(*ps.ini));
    ps.ini->path = apr_pstrdup(p, name);
    ps.ini->sections = apr_hash_make(p);
    while (text < end) {
        const char *nl = memchr(text, '\n', end - text);
        apr_size_t n = nl ? (apr_size_t)(nl - text) : (apr_size_t)(end - text);
        char *line = apr_pstrmemdup(p, text, n);

        lineno++;
        text += n + 1;
        if (n > 0 && line[n - 1] == '\r') {
            line[n - 1] = '\0';
        }

        why = parse_line(&ps, line);
        if (why) {
            *perr = apr_psprintf(p, "%s:%d: %s", name, lineno, why);
            return RQ_INI_ESYNTAX;
        }
    }
    *pini = ps.ini;
    return APR_SUCCESS;
}

apr_status_t rq_ini_read(rq_ini_t **pini, const char **perr, apr_pool_t *p, const char *path)
{
    apr_size_t len;
    apr_status_t rv;
    char *buf;

    rv = rq_file_read_all(&buf, &len, p, path, RQ_SETTINGS_FILE_MAX);
    if (APR_STATUS_IS_ENOENT(rv)) {
        *perr = apr_psprintf(p, "%s does not exist", path);
        return rv;
    }
    if (rv != APR_SUCCESS) {
        *perr = apr_psprintf(p, "cannot read %s: %pm", path, &rv);
        return rv;
    }
    return rq_ini_parse(pini, perr, p, buf, len, path);
}

apr_table_t *rq_ini_section(const rq_ini_t *ini, const char *name)
{
    return apr_hash_get(ini->sections, name, APR_HASH_KEY_STRING);
}
