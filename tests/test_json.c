/* test_json.c: strict JSON reading, as a handler uses it: parse a body,
 * validate fields, collect every error for one 422. */
#include <string.h>
#include <CUnit/Basic.h>
#include "cunit_main.h"
#include "json.h"

static json_object *parse(const char *s)
{
    return json_parse_strict(s, strlen(s), NULL);
}

static const char *first_field(json_object *errs)
{
    json_object *e = json_object_array_get_idx(errs, 0), *f;
    return e && json_object_object_get_ex(e, "field", &f) ? json_object_get_string(f) : "";
}

static void test_parse_accepts_valid_and_rejects_malformed(void)
{
    json_object *o = parse(" {\"a\": [1, 2.5, \"x\", true, null]} \n");
    CU_ASSERT_PTR_NOT_NULL(o);
    json_object_put(o);
    CU_ASSERT_PTR_NULL(parse("{\"a\": 1"));
    CU_ASSERT_PTR_NULL(parse("{\"a\": 1} trailing"));
    CU_ASSERT_PTR_NULL(parse("{'a': 1}"));
    CU_ASSERT_PTR_NULL(parse("{\"a\": 1,}"));
    CU_ASSERT_PTR_NULL(parse(""));
    CU_ASSERT_PTR_NULL(parse("{\"a\": NaN}"));
    CU_ASSERT_PTR_NULL(parse("{\"a\": nan}"));
    CU_ASSERT_PTR_NULL(parse("{\"a\": -Infinity}"));
    CU_ASSERT_PTR_NULL(parse("{\"a\": True}"));
    o = parse("{\"it's\": \"NaN e \\\" 'q'\", \"n\": -1.5e+3}");
    CU_ASSERT_PTR_NOT_NULL(o);
    json_object_put(o);
    /* RFC 8259's numbers only. */
    const char *numbers_ok[] = {"[0]", "[-0]", "[10]", "[0.5]", "[-1.25E-3]", "[1e9]", "[2E+2]", "[7 ]"};
    for (size_t i = 0; i < sizeof numbers_ok / sizeof *numbers_ok; i++) {
        o = parse(numbers_ok[i]);
        CU_ASSERT_PTR_NOT_NULL(o);
        json_object_put(o);
    }
    const char *numbers_bad[] = {"[1.]", "[01]", "[.5]", "[-]", "[1e]", "[1e+]", "[+1]", "[1.5.2]",
                                 "[- 1]", "[0x10]", "1.", "-"};
    for (size_t i = 0; i < sizeof numbers_bad / sizeof *numbers_bad; i++)
        CU_ASSERT_PTR_NULL(parse(numbers_bad[i]));
    /* No raw control character inside a string; escaped, it is fine. */
    CU_ASSERT_PTR_NULL(parse("{\"name\": \"a\tb\"}"));
    CU_ASSERT_PTR_NULL(parse("{\"name\": \"a\nb\"}"));
    CU_ASSERT_PTR_NULL(parse("{\"na\x01me\": 1}"));
    o = parse("{\"name\": \"a\\tb\\n\\u0001\"}");
    CU_ASSERT_PTR_NOT_NULL(o);
    json_object_put(o);
    /* null is well-formed but no object: NULL, and json_is_null says so. */
    CU_ASSERT_PTR_NULL(parse(" null "));
    CU_ASSERT_TRUE(json_is_null(" null\n", 6));
    CU_ASSERT_FALSE(json_is_null("nul", 3));
    CU_ASSERT_FALSE(json_is_null("null x", 6));
    CU_ASSERT_FALSE(json_is_null("{}", 2));
    /* Any value is a JSON text, a bare number or word too (no object: the
     * caller's 422); what follows it must still be whitespace. */
    o = parse(" 1 ");
    CU_ASSERT_TRUE(o && json_object_is_type(o, json_type_int) && json_object_get_int(o) == 1);
    json_object_put(o);
    o = parse("-2.5e3");
    CU_ASSERT_TRUE(o && json_object_is_type(o, json_type_double));
    json_object_put(o);
    o = parse("true");
    CU_ASSERT_TRUE(o && json_object_is_type(o, json_type_boolean));
    json_object_put(o);
    CU_ASSERT_PTR_NULL(parse("1 x"));
    CU_ASSERT_PTR_NULL(parse("1 2"));
    CU_ASSERT_PTR_NULL(parse("tru"));
    CU_ASSERT_PTR_NULL(parse("{\"a\": 1"));
}

/* A \u escape of half a surrogate pair is no character. */
static void test_parse_rejects_lone_surrogates(void)
{
    json_object *o = parse("{\"p\": \"\\ud83d\\ude00 \\\\ud800\"}");    /* a pair; "\\" */
    CU_ASSERT_PTR_NOT_NULL(o);
    json_object_put(o);
    CU_ASSERT_PTR_NULL(parse("{\"p\": \"\\ud800\"}"));
    CU_ASSERT_PTR_NULL(parse("{\"p\": \"\\uDBFFx\"}"));
    CU_ASSERT_PTR_NULL(parse("{\"p\": \"\\ud800\\u0041\"}"));
    CU_ASSERT_PTR_NULL(parse("{\"p\": \"\\udc00\"}"));
    CU_ASSERT_PTR_NULL(parse("{\"\\ud800\": 1}"));                       /* a member name */
}

static void test_parse_rejects_bytes_that_are_not_utf8(void)
{
    json_object *o = parse("{\"name\": \"caf\xc3\xa9 \xf0\x9f\x8d\xb5\"}");
    CU_ASSERT_PTR_NOT_NULL(o);
    json_object_put(o);
    CU_ASSERT_PTR_NULL(parse("{\"name\": \"caf\xe9\"}"));            /* Latin-1 */
    CU_ASSERT_PTR_NULL(parse("{\"name\": \"\xc3\x28\"}"));          /* bad continuation */
    CU_ASSERT_PTR_NULL(parse("{\"name\": \"\xc0\xaf\"}"));          /* overlong */
    CU_ASSERT_PTR_NULL(parse("{\"name\": \"\xed\xa0\x80\"}"));     /* surrogate */
    CU_ASSERT_PTR_NULL(parse("{\"\xff\": 1}"));                    /* a member name */
    CU_ASSERT_PTR_NULL(parse("{\"name\": \"\xe2\x82\"}"));          /* truncated */
}

static void test_parse_limits_depth(void)
{
    char deep[200];
    memset(deep, '[', 100);
    memset(deep + 100, ']', 100);
    json_refusal why;
    CU_ASSERT_PTR_NULL(json_parse_strict(deep, sizeof deep, &why));
    CU_ASSERT_EQUAL(why.kind, JSON_TOO_DEEP);
    /* 32 levels are fine; a text broken before the limit is malformed. */
    json_object *o = json_parse_strict(deep + 100 - JSON_MAX_DEPTH, 2 * JSON_MAX_DEPTH, &why);
    CU_ASSERT_PTR_NOT_NULL(o);
    json_object_put(o);
    CU_ASSERT_PTR_NULL(json_parse_strict("[[}", 3, &why));
    CU_ASSERT_EQUAL(why.kind, JSON_MALFORMED);
}

/* json-c keeps member names as C strings: "name\u0000x" would read as
 * "name".  Such a name is refused with its text; in a value it is kept for
 * the getters to refuse. */
static void test_parse_refuses_nul_in_a_member_name(void)
{
    json_refusal why;
    const char *t = "{\"sku\": \"a\", \"name\\u0000evil\": \"x\"}";
    CU_ASSERT_PTR_NULL(json_parse_strict(t, strlen(t), &why));
    CU_ASSERT_EQUAL(why.kind, JSON_NUL_NAME);
    CU_ASSERT_STRING_EQUAL(why.name, "name\\u0000evil");
    t = "{\"items\": [{\"product_id\\u0000\": 1}]}";
    CU_ASSERT_PTR_NULL(json_parse_strict(t, strlen(t), &why));
    CU_ASSERT_EQUAL(why.kind, JSON_NUL_NAME);
    CU_ASSERT_STRING_EQUAL(why.name, "product_id\\u0000");
    /* In a value, or an escaped backslash before "u0000": parsed. */
    t = "{\"name\": \"a\\u0000b\", \"x\\\\u0000\": 1}";
    json_object *o = json_parse_strict(t, strlen(t), &why);
    CU_ASSERT_PTR_NOT_NULL(o);
    CU_ASSERT_TRUE(json_object_object_get_ex(o, "x\\u0000", NULL));
    json_object_put(o);
}

/* A name given twice in one object: json-c keeps the last, another reader
 * the first, so the text is refused, naming it (decoded). */
static void test_parse_refuses_a_name_twice_in_one_object(void)
{
    static const struct { const char *text, *name; } dup[] = {
        {"{\"delta\": 5, \"delta\": -5}", "delta"},
        {"{\"a\": 1, \"b\": {\"c\": 1, \"c\": 2}}", "c"},
        {"{\"items\": [{\"q\": 1}, {\"q\": 1, \"p\": 2, \"q\": 3}]}", "q"},
        {"{\"name\": \"x\", \"na\\u006de\": \"y\"}", "name"},      /* the same name, escaped */
        {"{\"a\": {}, \"a\": []}", "a"},
    };
    json_refusal why;
    for (size_t i = 0; i < sizeof dup / sizeof dup[0]; i++) {
        CU_ASSERT_PTR_NULL(json_parse_strict(dup[i].text, strlen(dup[i].text), &why));
        CU_ASSERT_EQUAL(why.kind, JSON_DUP_NAME);
        CU_ASSERT_STRING_EQUAL(why.name, dup[i].name);
    }
    /* One name per object, the same in different objects, or in a value: fine. */
    static const char *const ok[] = {
        "{\"a\": {\"a\": 1}, \"b\": [{\"a\": 1}, {\"a\": 2}]}",
        "{\"a\": \"a\", \"b\": [\"a\", \"a\"], \"c\": {\"x\": \"\\\"a\\\": 1\"}}",
        "[{\"k\": 1}, {\"k\": 2}]",
    };
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
        json_object *o = json_parse_strict(ok[i], strlen(ok[i]), &why);
        CU_ASSERT_PTR_NOT_NULL(o);
        json_object_put(o);
    }
}

static void test_get_int_is_strict(void)
{
    json_object *o = parse("{\"i\": 7, \"f\": 1.5, \"one\": 1.0, \"s\": \"1\", \"b\": true, "
                           "\"big\": 99999999999999999999, \"neg\": -3, "
                           "\"top\": 9223372036854775807, \"over\": 9223372036854775808}");
    json_object *errs = json_object_new_array();
    int64_t v = 0;
    CU_ASSERT_EQUAL(json_get_int(o, "i", 0, 10, true, &v, errs), JSON_OK);
    CU_ASSERT_EQUAL(v, 7);
    CU_ASSERT_EQUAL(json_object_array_length(errs), 0);
    CU_ASSERT_EQUAL(json_get_int(o, "f", 0, 10, true, &v, errs), JSON_BAD);
    CU_ASSERT_EQUAL(json_get_int(o, "one", 0, 10, true, &v, errs), JSON_BAD);
    CU_ASSERT_EQUAL(json_get_int(o, "s", 0, 10, true, &v, errs), JSON_BAD);
    CU_ASSERT_EQUAL(json_get_int(o, "b", 0, 10, true, &v, errs), JSON_BAD);
    CU_ASSERT_EQUAL(json_get_int(o, "big", 0, INT64_MAX - 1, true, &v, errs), JSON_BAD);
    CU_ASSERT_EQUAL(json_get_int(o, "neg", 0, 10, true, &v, errs), JSON_BAD);
    /* INT64_MAX is a value like any other; one past it is out of range */
    CU_ASSERT_EQUAL(json_get_int(o, "top", 1, INT64_MAX, true, &v, errs), JSON_OK);
    CU_ASSERT_EQUAL(v, INT64_MAX);
    CU_ASSERT_EQUAL(json_get_int(o, "over", 1, INT64_MAX, true, &v, errs), JSON_BAD);
    CU_ASSERT_EQUAL(json_get_int(o, "big", 1, INT64_MAX, true, &v, errs), JSON_BAD);
    CU_ASSERT_EQUAL(json_object_array_length(errs), 8);
    CU_ASSERT_STRING_EQUAL(first_field(errs), "f");
    json_object_put(errs);
    json_object_put(o);
}

static void test_get_int_absent_and_null(void)
{
    json_object *o = parse("{\"n\": null}");
    json_object *errs = json_object_new_array();
    int64_t v = 42;
    CU_ASSERT_EQUAL(json_get_int(o, "missing", 0, 10, false, &v, errs), JSON_ABSENT);
    CU_ASSERT_EQUAL(json_object_array_length(errs), 0);
    /* null is no integer, optional or not: an error naming the field */
    CU_ASSERT_EQUAL(json_get_int(o, "n", 0, 10, false, &v, errs), JSON_BAD);
    CU_ASSERT_EQUAL(v, 42);
    CU_ASSERT_EQUAL(json_object_array_length(errs), 1);
    CU_ASSERT_STRING_EQUAL(first_field(errs), "n");
    const char *s = "kept";
    CU_ASSERT_EQUAL(json_get_str(o, "n", 0, 10, true, &s, errs), JSON_BAD);
    CU_ASSERT_STRING_EQUAL(s, "kept");
    CU_ASSERT_EQUAL(json_object_array_length(errs), 2);
    CU_ASSERT_EQUAL(json_get_int(o, "missing", 0, 10, true, &v, errs), JSON_ABSENT);
    CU_ASSERT_EQUAL(json_object_array_length(errs), 3);
    json_object_put(errs);
    json_object_put(o);
}

static void test_get_str_counts_characters(void)
{
    /* "é" is two bytes but one character. */
    json_object *o = parse("{\"name\": \"\xc3\xa9t\xc3\xa9\", \"num\": 3, \"empty\": \"\"}");
    json_object *errs = json_object_new_array();
    const char *s = NULL;
    CU_ASSERT_EQUAL(json_get_str(o, "name", 1, 3, true, &s, errs), JSON_OK);
    CU_ASSERT_STRING_EQUAL(s, "\xc3\xa9t\xc3\xa9");
    CU_ASSERT_EQUAL(json_get_str(o, "name", 1, 2, true, &s, errs), JSON_BAD);
    CU_ASSERT_EQUAL(json_get_str(o, "num", 0, 10, true, &s, errs), JSON_BAD);
    CU_ASSERT_EQUAL(json_get_str(o, "empty", 1, 10, true, &s, errs), JSON_BAD);
    CU_ASSERT_EQUAL(json_object_array_length(errs), 3);
    json_object_put(errs);
    json_object_put(o);
}

static void test_utf8_len(void)
{
    CU_ASSERT_EQUAL(json_utf8_len("abc", 3), 3);
    CU_ASSERT_EQUAL(json_utf8_len("\xe2\x82\xac", 3), 1);          /* euro sign */
    CU_ASSERT_EQUAL(json_utf8_len("\xf0\x9f\x98\x80", 4), 1);      /* emoji */
    CU_ASSERT_EQUAL(json_utf8_len("\xc0\xaf", 2), -1);             /* overlong */
    CU_ASSERT_EQUAL(json_utf8_len("\xed\xa0\x80", 3), -1);         /* surrogate */
    CU_ASSERT_EQUAL(json_utf8_len("\xe2\x82", 2), -1);             /* truncated */
}

static void test_str_blank(void)
{
    CU_ASSERT_TRUE(json_str_blank(""));
    CU_ASSERT_TRUE(json_str_blank(" \t\r\n"));
    CU_ASSERT_TRUE(json_str_blank("\xc2\xa0\xe3\x80\x80\xe2\x80\x8b"));   /* NBSP, U+3000, ZWSP */
    /* default ignorables: soft hyphen, CGJ, variation selector 16, Hangul
     * filler, a tag letter */
    CU_ASSERT_TRUE(json_str_blank("\xc2\xad\xcd\x8f\xef\xb8\x8f\xe3\x85\xa4\xf3\xa0\x81\x81"));
    CU_ASSERT_FALSE(json_str_blank(" a "));
    CU_ASSERT_FALSE(json_str_blank(" \xe2\x82\xac"));                      /* a euro sign */
    CU_ASSERT_FALSE(json_str_blank("\xc0\xaf"));                            /* not UTF-8 */
}

static void test_check_fields_names_unknown(void)
{
    static const char *const allowed[] = {"sku", "name", NULL};
    json_object *o = parse("{\"sku\": \"a\", \"name\": \"b\", \"stock\": 1, \"x\": 2}");
    json_object *errs = json_object_new_array();
    CU_ASSERT_EQUAL(json_check_fields(o, allowed, errs), 2);
    CU_ASSERT_EQUAL(json_object_array_length(errs), 2);
    CU_ASSERT_STRING_EQUAL(first_field(errs), "stock");
    json_object_put(errs);
    json_object_put(o);
}

int main(void)
{
    if (CU_initialize_registry() != CUE_SUCCESS)
        return 1;
    CU_pSuite s = CU_add_suite("json", NULL, NULL);
    CU_add_test(s, "parse accepts valid, rejects malformed", test_parse_accepts_valid_and_rejects_malformed);
    CU_add_test(s, "parse rejects bytes that are not UTF-8", test_parse_rejects_bytes_that_are_not_utf8);
    CU_add_test(s, "parse limits depth", test_parse_limits_depth);
    CU_add_test(s, "parse refuses NUL in a member name", test_parse_refuses_nul_in_a_member_name);
    CU_add_test(s, "get_int is strict", test_get_int_is_strict);
    CU_add_test(s, "lone surrogates", test_parse_rejects_lone_surrogates);
    CU_add_test(s, "get_int absent and null", test_get_int_absent_and_null);
    CU_add_test(s, "get_str counts characters", test_get_str_counts_characters);
    CU_add_test(s, "utf8_len", test_utf8_len);
    CU_add_test(s, "a name twice in one object", test_parse_refuses_a_name_twice_in_one_object);
    CU_add_test(s, "str_blank", test_str_blank);
    CU_add_test(s, "check_fields names unknown", test_check_fields_names_unknown);
    return cunit_run_all();
}
