/* json.c: strict body parsing and field validation on top of json-c.
 * json-c's own getters convert between types silently; the contract says a
 * number that must be an integer rejects 1.5, "1" and true, so every getter
 * here checks json_object_get_type() exactly before reading. */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "json.h"

/* json-c's strict mode still takes 'single-quoted' strings, NaN or
 * Infinity, numbers such as "1." or "01", and raw control characters inside
 * strings; RFC 8259 does not.  Outside strings, only structural characters,
 * numbers in RFC 8259's grammar and the words true, false and null may
 * appear; inside them, no byte below 0x20 (a tab is written \t). */
static bool json_digit(char c)
{
    return c >= '0' && c <= '9';
}

/* The end of the number at s[i] (-?int frac? exp?), or 0 when it is none. */
static size_t json_number_end(const char *s, size_t n, size_t i)
{
    if (s[i] == '-')
        i++;
    if (i >= n || !json_digit(s[i]))
        return 0;
    if (s[i] == '0')
        i++;
    else
        while (i < n && json_digit(s[i]))
            i++;
    if (i < n && s[i] == '.') {
        if (++i >= n || !json_digit(s[i]))
            return 0;
        while (i < n && json_digit(s[i]))
            i++;
    }
    if (i < n && (s[i] == 'e' || s[i] == 'E')) {
        if (++i < n && (s[i] == '+' || s[i] == '-'))
            i++;
        if (i >= n || !json_digit(s[i]))
            return 0;
        while (i < n && json_digit(s[i]))
            i++;
    }
    /* "01" or "1.5.2": a digit or a point right after a whole number. */
    return i < n && (json_digit(s[i]) || s[i] == '.') ? 0 : i;
}

/* The code unit of the \uXXXX escape at s[i] (s[i] == '\\'), or -1. */
static long json_u_escape(const char *s, size_t n, size_t i)
{
    if (i + 6 > n || s[i] != '\\' || s[i + 1] != 'u')
        return -1;
    long v = 0;
    for (size_t k = i + 2; k < i + 6; k++) {
        char c = s[k];
        int d = json_digit(c) ? c - '0' : (c >= 'a' && c <= 'f') ? c - 'a' + 10
                : (c >= 'A' && c <= 'F') ? c - 'A' + 10 : -1;
        if (d < 0)
            return -1;
        v = v * 16 + d;
    }
    return v;
}

/* Also finds the first member name holding \u0000: json-c keeps names as C
 * strings, so "name\u0000x" would read as "name", a known field.  Its text
 * as written goes to *nul_name / *nul_len (left alone when there is none). */
static bool json_lexically_valid(const char *s, size_t n, const char **nul_name, size_t *nul_len,
                                 size_t *names)
{
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (c == '"') {
            size_t start = i + 1;
            bool nul = false;
            for (i++; i < n && s[i] != '"'; i++) {
                if ((unsigned char)s[i] < 0x20)
                    return false;
                if (s[i] != '\\')
                    continue;
                /* A surrogate escape must be a high one followed by a low
                 * one: a lone half is no character (json-c would make it
                 * U+FFFD, so two different texts would read the same). */
                long u = json_u_escape(s, n, i);
                nul = nul || u == 0;
                if (u >= 0xDC00 && u <= 0xDFFF)
                    return false;
                if (u >= 0xD800 && u <= 0xDBFF) {
                    long lo = json_u_escape(s, n, i + 6);
                    if (lo < 0xDC00 || lo > 0xDFFF)
                        return false;
                    i += 11;
                } else {
                    i++;
                }
            }
            size_t k = i + 1;
            while (k < n && strchr(" \t\r\n", s[k]) && s[k])
                k++;
            if (k < n && s[k] == ':')
                ++*names;
            if (nul && k < n && s[k] == ':' && !*nul_name) {
                *nul_name = s + start;
                *nul_len = i - start;
            }
            continue;
        }
        if (c == '-' || json_digit(c)) {
            size_t end = json_number_end(s, n, i);
            if (end == 0)
                return false;
            i = end - 1;
            continue;
        }
        if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')) {
            size_t start = i;
            while (i + 1 < n && ((s[i + 1] >= 'a' && s[i + 1] <= 'z') || (s[i + 1] >= 'A' && s[i + 1] <= 'Z')))
                i++;
            size_t wl = i - start + 1;
            bool word = (wl == 4 && (!memcmp(s + start, "true", 4) || !memcmp(s + start, "null", 4))) ||
                        (wl == 5 && !memcmp(s + start, "false", 5));
            if (!word)
                return false;
            continue;
        }
        if (!strchr("{}[],: \t\r\n", c) || c == '\0')
            return false;
    }
    return true;
}

/* The members of every object in o: json-c keeps one per name and object,
 * so fewer than the names written means a name given twice. */
static size_t json_members(json_object *o)
{
    size_t n = 0;
    if (json_object_is_type(o, json_type_object)) {
        json_object_object_foreach(o, k, v) {
            (void)k;
            n += 1 + json_members(v);
        }
    } else if (json_object_is_type(o, json_type_array)) {
        for (size_t i = 0; i < json_object_array_length(o); i++)
            n += json_members(json_object_array_get_idx(o, i));
    }
    return n;
}

/* The string at s[i] == '"' as json-c reads it (escapes decoded), or NULL;
 * *end: the index of its closing quote.  Only on the refusal path. */
static json_object *json_string_at(const char *s, size_t n, size_t i, size_t *end)
{
    size_t k = i + 1;
    while (k < n && s[k] != '"')
        k += s[k] == '\\' ? 2 : 1;
    *end = k;
    struct json_tokener *tok = k < n ? json_tokener_new() : NULL;
    json_object *o = tok ? json_tokener_parse_ex(tok, s + i, (int)(k - i + 1)) : NULL;
    json_tokener_free(tok);
    return o;
}

/* Finds a member name given twice in one object of the (well-formed) text
 * and returns it decoded (a json-c string), or NULL. */
static json_object *json_find_dup_name(const char *s, size_t n)
{
    json_object *frames[JSON_MAX_DEPTH + 1] = {0};   /* names seen per open object */
    json_object *dup = NULL;
    int depth = -1;
    for (size_t i = 0; i < n && !dup; i++) {
        if (s[i] == '{' && depth < JSON_MAX_DEPTH) {
            frames[++depth] = json_object_new_object();
        } else if (s[i] == '}' && depth >= 0) {
            json_object_put(frames[depth--]);
        } else if (s[i] == '"') {
            size_t end;
            json_object *str = json_string_at(s, n, i, &end);
            size_t k = end + 1;
            while (k < n && strchr(" \t\r\n", s[k]) && s[k])
                k++;
            const char *name = str ? json_object_get_string(str) : NULL;
            if (name && depth >= 0 && k < n && s[k] == ':') {
                if (json_object_object_get_ex(frames[depth], name, NULL)) {
                    dup = str;
                    str = NULL;
                } else {
                    json_object_object_add(frames[depth], name, NULL);
                }
            }
            json_object_put(str);
            i = end;
        }
    }
    while (depth >= 0)
        json_object_put(frames[depth--]);
    return dup;
}

/* Copies a name into why->name, cut short at a UTF-8 boundary. */
static void json_refuse_name(json_refusal *why, int kind, const char *name, size_t len)
{
    why->kind = kind;
    size_t keep = len < sizeof why->name - 1 ? len : sizeof why->name - 1;
    while (keep > 0 && keep < len && ((unsigned char)name[keep] & 0xC0) == 0x80)
        keep--;     /* not in the middle of a UTF-8 sequence */
    memcpy(why->name, name, keep);
    why->name[keep] = '\0';
}

json_object *json_parse_strict(const char *text, size_t len, json_refusal *why)
{
    json_refusal spare;
    if (!why)
        why = &spare;
    why->kind = JSON_MALFORMED;
    why->name[0] = '\0';
    /* RFC 8259: JSON text is UTF-8.  json-c takes any bytes in strings, and a
     * member name that is not UTF-8 would be echoed into a 422's "field". */
    const char *nul_name = NULL;
    size_t nul_len = 0, names = 0;
    if (!text || len == 0 || len > (size_t)INT32_MAX ||
        !json_lexically_valid(text, len, &nul_name, &nul_len, &names) || json_utf8_len(text, len) < 0)
        return NULL;
    struct json_tokener *tok = json_tokener_new_ex(JSON_MAX_DEPTH);
    if (!tok)
        return NULL;
    json_tokener_set_flags(tok, JSON_TOKENER_STRICT);
    json_object *o = json_tokener_parse_ex(tok, text, (int)len);
    enum json_tokener_error err = json_tokener_get_error(tok);
    size_t used = json_tokener_get_parse_end(tok);
    if (err == json_tokener_continue && used == len) {
        /* A top-level number or word ("1", "true") may go on in json-c's
         * eyes; the end of the text ends it. */
        o = json_tokener_parse_ex(tok, " ", 1);
        err = json_tokener_get_error(tok);
    }
    json_tokener_free(tok);
    if (err != json_tokener_success) {
        if (err == json_tokener_error_depth)
            why->kind = JSON_TOO_DEEP;
        json_object_put(o);
        return NULL;
    }
    /* Only whitespace may follow the value. */
    for (size_t i = used; i < len; i++)
        if (!strchr(" \t\r\n", text[i])) {
            json_object_put(o);
            return NULL;
        }
    if (nul_name) {
        /* Well-formed, but a name json-c cannot hold: refused whole. */
        json_refuse_name(why, JSON_NUL_NAME, nul_name, nul_len);
        json_object_put(o);
        return NULL;
    }
    if (json_members(o) != names) {
        json_object *dup = json_find_dup_name(text, len);
        json_refuse_name(why, JSON_DUP_NAME, dup ? json_object_get_string(dup) : "",
                         dup ? (size_t)json_object_get_string_len(dup) : 0);
        json_object_put(dup);
        json_object_put(o);
        return NULL;
    }
    /* A bare literal "null" parses to NULL with success (json_is_null). */
    return o;
}

bool json_is_null(const char *text, size_t len)
{
    size_t i = 0;
    while (i < len && strchr(" \t\r\n", text[i]) && text[i])
        i++;
    if (len - i < 4 || memcmp(text + i, "null", 4) != 0)
        return false;
    for (i += 4; i < len; i++)
        if (!strchr(" \t\r\n", text[i]) || !text[i])
            return false;
    return true;
}

void json_add_error(json_object *errs, const char *field, const char *message)
{
    if (!errs)
        return;
    json_object *e = json_object_new_object();
    if (!e)
        return;
    json_object_object_add(e, "field", json_object_new_string(field));
    json_object_object_add(e, "message", json_object_new_string(message));
    json_object_array_add(errs, e);
}

int json_check_fields(json_object *obj, const char *const allowed[], json_object *errs)
{
    int unknown = 0;
    json_object_object_foreach(obj, key, val) {
        (void)val;
        bool ok = false;
        for (size_t i = 0; allowed[i]; i++)
            if (strcmp(allowed[i], key) == 0) {
                ok = true;
                break;
            }
        if (!ok) {
            json_add_error(errs, key, "unknown field");
            unknown++;
        }
    }
    return unknown;
}

/* Looks up key into *v: JSON_OK, JSON_ABSENT (an error added when it is
 * required) or JSON_BAD for a null member: null is no value of any field
 * these read (a merge patch's null is the caller's to handle first). */
static int json_member(json_object *obj, const char *key, bool required, json_object *errs,
                       json_object **v)
{
    *v = NULL;
    if (!obj || !json_object_object_get_ex(obj, key, v)) {
        if (required)
            json_add_error(errs, key, "is required");
        return JSON_ABSENT;
    }
    if (!*v) {
        json_add_error(errs, key, "must not be null");
        return JSON_BAD;
    }
    return JSON_OK;
}

bool json_null_member(json_object *obj, const char *key)
{
    json_object *v = NULL;
    return obj && json_object_object_get_ex(obj, key, &v) && v == NULL;
}

int json_get_int(json_object *obj, const char *key, int64_t min, int64_t max, bool required,
                 int64_t *out, json_object *errs)
{
    json_object *v;
    int rc = json_member(obj, key, required, errs, &v);
    if (rc != JSON_OK)
        return rc;
    if (json_object_get_type(v) != json_type_int) {
        json_add_error(errs, key, "must be an integer");
        return JSON_BAD;
    }
    /* json-c saturates out-of-range literals at INT64_MIN/MAX; reject those
     * too.  Above INT64_MAX it keeps the literal as a uint64, so INT64_MAX
     * itself is told apart; no range here starts at INT64_MIN. */
    int64_t n = json_object_get_int64(v);
    bool saturated = (n == INT64_MAX && json_object_get_uint64(v) != (uint64_t)INT64_MAX) ||
                     n == INT64_MIN;
    if (n < min || n > max || saturated) {
        char msg[96];
        snprintf(msg, sizeof msg, "must be between %lld and %lld", (long long)min, (long long)max);
        json_add_error(errs, key, msg);
        return JSON_BAD;
    }
    *out = n;
    return JSON_OK;
}

bool json_char_blank(long c)
{
    /* White space, then Unicode's Default_Ignorable_Code_Point (soft
     * hyphen, joiners, fillers, variation selectors, tags: drawn as
     * nothing), which the ranges from 0x200B on share with it. */
    return c == ' ' || (c >= 0x09 && c <= 0x0D) || (c >= 0x80 && c <= 0xA0) || c == 0x1680 ||
           (c >= 0x2000 && c <= 0x200F) || (c >= 0x2028 && c <= 0x202F) ||
           (c >= 0x205F && c <= 0x206F) || c == 0x3000 || c == 0xFEFF ||
           c == 0x00AD || c == 0x034F || c == 0x061C || c == 0x115F || c == 0x1160 ||
           c == 0x17B4 || c == 0x17B5 || (c >= 0x180B && c <= 0x180F) || c == 0x3164 ||
           (c >= 0xFE00 && c <= 0xFE0F) || c == 0xFFA0 || (c >= 0xFFF0 && c <= 0xFFF8) ||
           (c >= 0x1BCA0 && c <= 0x1BCA3) || (c >= 0x1D173 && c <= 0x1D17A) ||
           (c >= 0xE0000 && c <= 0xE0FFF);
}

bool json_str_blank(const char *s)
{
    const char *end = s + strlen(s);
    while (s < end) {
        long c = json_utf8_next(&s, end);
        if (c < 0 || !json_char_blank(c))
            return false;
    }
    return true;
}

long json_utf8_next(const char **s, const char *end)
{
    const unsigned char *p = (const unsigned char *)*s;
    unsigned c = *p;
    size_t len;
    unsigned cp;
    if (c < 0x80) {
        len = 1;
        cp = c;
    } else if ((c & 0xE0) == 0xC0) {
        len = 2;
        cp = c & 0x1F;
    } else if ((c & 0xF0) == 0xE0) {
        len = 3;
        cp = c & 0x0F;
    } else if ((c & 0xF8) == 0xF0) {
        len = 4;
        cp = c & 0x07;
    } else {
        return -1;
    }
    if ((size_t)((const unsigned char *)end - p) < len)
        return -1;
    for (size_t i = 1; i < len; i++) {
        if ((p[i] & 0xC0) != 0x80)
            return -1;
        cp = (cp << 6) | (p[i] & 0x3F);
    }
    /* Overlong forms, surrogates and values past U+10FFFF are not UTF-8. */
    if ((len == 2 && cp < 0x80) || (len == 3 && cp < 0x800) || (len == 4 && cp < 0x10000) ||
        cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
        return -1;
    *s = (const char *)p + len;
    return (long)cp;
}

long json_utf8_len(const char *s, size_t n)
{
    long count = 0;
    const char *end = s + n;
    while (s < end) {
        if (json_utf8_next(&s, end) < 0)
            return -1;
        count++;
    }
    return count;
}

int json_get_str(json_object *obj, const char *key, size_t min, size_t max, bool required,
                 const char **out, json_object *errs)
{
    json_object *v;
    int rc = json_member(obj, key, required, errs, &v);
    if (rc != JSON_OK)
        return rc;
    if (json_object_get_type(v) != json_type_string) {
        json_add_error(errs, key, "must be a string");
        return JSON_BAD;
    }
    const char *s = json_object_get_string(v);
    size_t bytes = (size_t)json_object_get_string_len(v);
    long chars = json_utf8_len(s, bytes);
    if (chars < 0 || strlen(s) != bytes) {
        json_add_error(errs, key, "must be valid UTF-8 without NUL characters");
        return JSON_BAD;
    }
    if ((size_t)chars < min || (size_t)chars > max) {
        char msg[96];
        if (chars == 0 && min == 1)
            snprintf(msg, sizeof msg, "must not be empty");
        else if (min == max)
            snprintf(msg, sizeof msg, "must be %zu characters", min);
        else
            snprintf(msg, sizeof msg, "must be %zu to %zu characters", min, max);
        json_add_error(errs, key, msg);
        return JSON_BAD;
    }
    *out = s;
    return JSON_OK;
}

void json_set_int(json_object *obj, const char *key, int64_t v)
{
    json_object_object_add(obj, key, json_object_new_int64(v));
}

void json_set_str(json_object *obj, const char *key, const char *s)
{
    json_object_object_add(obj, key, s ? json_object_new_string(s) : NULL);
}
