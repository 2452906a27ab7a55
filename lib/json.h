/* json.h: strict reading of request bodies on top of json-c.  json-c itself is
 * lenient (1.0 is a number, "1" converts to 1); these helpers are not: each
 * getter checks the JSON type exactly and the range, and appends a
 * {"field","message"} entry to `errs` (a JSON array) for every bad field, so a
 * handler can validate a whole body and answer one 422 naming every field. */
#ifndef SHOP_JSON_H
#define SHOP_JSON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <json-c/json.h>

#define JSON_MAX_DEPTH 32

/* Why json_parse_strict gave NULL. */
typedef struct json_refusal {
    enum {
        JSON_MALFORMED = 1,     /* not JSON (RFC 8259) */
        JSON_TOO_DEEP,          /* arrays and objects nested over JSON_MAX_DEPTH */
        JSON_NUL_NAME,          /* well-formed, but a member name holds \u0000 */
        JSON_DUP_NAME           /* well-formed, but one object names a member twice */
    } kind;
    char name[136];             /* JSON_*_NAME: that name as written (truncated) */
} json_refusal;

/* Parses a complete JSON text (no trailing garbage, strict mode, depth <=
 * JSON_MAX_DEPTH, RFC 8259's numbers and strings, no U+0000 in a member
 * name, no name twice in one object: json-c would keep the last, another
 * reader the first).  Returns NULL when it refuses the text, saying why in *why (may be
 * NULL), and also for the well-formed text "null" (json_is_null tells the
 * two apart). */
json_object *json_parse_strict(const char *text, size_t len, json_refusal *why);

/* True when the text is the literal null, with whitespace around it. */
bool json_is_null(const char *text, size_t len);

/* Appends {"field": field, "message": message} to errs. */
void json_add_error(json_object *errs, const char *field, const char *message);

/* Adds an error for every member of obj whose name is not in the
 * NULL-terminated `allowed` list.  Returns the number of unknown fields. */
int json_check_fields(json_object *obj, const char *const allowed[], json_object *errs);

/* Result of the getters below. */
enum { JSON_ABSENT = 0, JSON_OK = 1, JSON_BAD = -1 };

/* Reads integer member `key` in [min, max].  Rejects floats, strings, bools.
 * When absent and `required`, adds an error; a null member is an error
 * ("must not be null", JSON_BAD) whether required or not. */
int json_get_int(json_object *obj, const char *key, int64_t min, int64_t max,
                 bool required, int64_t *out, json_object *errs);

/* Reads string member `key` of min..max Unicode characters (valid UTF-8, no
 * NUL).  *out points into obj.  Absent and null as json_get_int. */
int json_get_str(json_object *obj, const char *key, size_t min, size_t max,
                 bool required, const char **out, json_object *errs);

/* True when obj has member key with the value null (a merge patch's
 * removal, or an optional field that allows null). */
bool json_null_member(json_object *obj, const char *key);

/* The code point of the UTF-8 sequence at *s (before end), advancing *s past
 * it; -1 when it is no valid UTF-8 (*s unchanged). */
long json_utf8_next(const char **s, const char *end);

/* Whether code point c is blank or invisible: ASCII white space, Unicode's
 * spaces, line and paragraph separators, C1 controls, and every default
 * ignorable code point (zero-width characters, the BOM, the soft hyphen,
 * fillers, variation selectors, tags). */
bool json_char_blank(long c);

/* Whether UTF-8 text s holds nothing but blank characters (an empty s
 * included); invalid UTF-8 is not blank. */
bool json_str_blank(const char *s);

/* Number of Unicode code points in s, or -1 when s is not valid UTF-8. */
long json_utf8_len(const char *s, size_t n);

/* Shorthands for building responses. */
void json_set_int(json_object *obj, const char *key, int64_t v);
void json_set_str(json_object *obj, const char *key, const char *s);  /* NULL -> null */

#endif
