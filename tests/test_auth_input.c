/* test_auth_input.c: the auth service's input rules that need no database:
 * email normalization (trim, shape, length, case folding), the password
 * length in Unicode characters, and the Argon2id parameters of new hashes. */
#include <string.h>

#include <CUnit/Basic.h>
#include "cunit_main.h"
#include <sodium.h>

#include "auth/handlers.h"

static char email[STORE_EMAIL_MAX * 4 + 1], norm[STORE_EMAIL_MAX * 4 + 1];

static void test_email_trim_and_fold(void)
{
    CU_ASSERT_EQUAL_FATAL(auth_email_normalize("  Ada.L@Example.TEST\t\n", email, norm), 0);
    CU_ASSERT_STRING_EQUAL(email, "Ada.L@Example.TEST");
    CU_ASSERT_STRING_EQUAL(norm, "ada.l@example.test");
    CU_ASSERT_EQUAL_FATAL(auth_email_normalize("José@bücher.example", email, norm), 0);
    CU_ASSERT_STRING_EQUAL(norm, "josé@bücher.example");   /* non-ASCII left to the collation */
    CU_ASSERT_EQUAL(auth_email_normalize("a@b", email, norm), 0);
}

static void test_email_rejects(void)
{
    const char *bad[] = {"", "   ", "plain", "a@", "@b", "a@@b", "a@b@c", "a b@c.d", "a@b c.d",
                         "a\t@b.c", "a@b.c\x7f", "a\x01@b.c", "\xff@b.c", NULL};
    for (int i = 0; bad[i]; i++)
        CU_ASSERT_EQUAL(auth_email_normalize(bad[i], email, norm), -1);
    CU_ASSERT_EQUAL(auth_email_normalize(NULL, email, norm), -1);
}

/* Registration's shape check (auth_email_valid) on trimmed addresses. */
static void test_email_shape(void)
{
    const char *good[] = {"a@b", "Ada.L@Example.TEST", "o'brien+tag@mail.example-one.org",
                          "José@bücher.example", "x_y-z!#$%&*/=?^`{|}~@a1.b2",
                          "user@\xe4\xb8\xad\xe6\x96\x87.example",          /* 中文 */
                          "user@\xe0\xa4\x95\xe0\xa4\xbf.example",          /* कि */
                          "\xe2\x98\x83@b.example", NULL};   /* a snowman in the local part */
    for (int i = 0; good[i]; i++)
        CU_ASSERT_TRUE(auth_email_valid(good[i]));
    const char *bad[] = {".a@b.c", "a.@b.c", "a..b@c.d", "a@b..c", "a@.b", "a@b.c.", "a@-b.c",
                         "a@b-.c", "a@b.c-", "a<x>@b.c", "a\\@b.c", "\"a\"@b.c", "a,b@c.d",
                         "a@b_c.d", "a@[1.2.3.4]", "a\xc2\xa0" "@b.c", "\xe2\x80\xa8" "a@b.c",
                         "a@b\xe3\x80\x80" ".c", "a\xe2\x80\x8b" "@b.c", "a\xc2\x85" "@b.c", "ab",
                         /* invisible anywhere: soft hyphen, variation selector, CGJ,
                          * tag letter, Hangul filler, Mongolian vowel separator */
                         "a\xc2\xad" "@b.c", "a\xef\xb8\x8f" "@b.c", "a@b\xcd\x8f" ".c",
                         "a\xf3\xa0\x81\x81" "@b.c", "a\xe3\x85\xa4" "@b.c", "a@b\xe1\xa0\x8e" ".c",
                         /* a domain label of symbols, private use, a noncharacter,
                          * a lone combining mark, fractions, punctuation */
                         "a@x\xe2\x98\x83" "y.c", "a@shop\xe2\x82\xac" ".c",
                         "a@x\xf0\x9f\x98\x80" "y.c", "a@\xee\x80\x80" ".c", "a@\xef\xbf\xbf" ".c",
                         "a@b\xcc\x81" ".c", "a@\xc2\xbd" ".c", "a@\xc2\xb2" ".c", "a@b\xc2\xb7" "c.d",
                         NULL};
    for (int i = 0; bad[i]; i++)
        CU_ASSERT_FALSE(auth_email_valid(bad[i]));
}

static void test_email_length_in_characters(void)
{
    char in[1200];
    /* 254 characters: local part of 'x' + "@example.test" */
    memset(in, 'x', 241);
    strcpy(in + 241, "@example.test");
    CU_ASSERT_EQUAL(strlen(in), 254);
    CU_ASSERT_EQUAL(auth_email_normalize(in, email, norm), 0);
    memset(in, 'x', 242);
    strcpy(in + 242, "@example.test");
    CU_ASSERT_EQUAL(auth_email_normalize(in, email, norm), -1);
    /* 254 two-byte characters fit: the limit counts characters, not bytes */
    size_t n = 0;
    for (int i = 0; i < 241; i++) {
        in[n++] = (char)0xc3;
        in[n++] = (char)0xa4;   /* ä */
    }
    strcpy(in + n, "@example.test");
    CU_ASSERT_EQUAL(auth_email_normalize(in, email, norm), 0);
}

static void test_password_length(void)
{
    char pw[600];
    CU_ASSERT_FALSE(auth_password_ok(NULL));
    CU_ASSERT_FALSE(auth_password_ok("1234567"));
    CU_ASSERT_TRUE(auth_password_ok("12345678"));
    CU_ASSERT_TRUE(auth_password_ok("ääääääää"));      /* 8 characters, 16 bytes */
    CU_ASSERT_FALSE(auth_password_ok("äääääää"));      /* 7 characters, 14 bytes */
    memset(pw, 'p', 128);
    pw[128] = '\0';
    CU_ASSERT_TRUE(auth_password_ok(pw));
    pw[128] = 'p';
    pw[129] = '\0';
    CU_ASSERT_FALSE(auth_password_ok(pw));
    CU_ASSERT_FALSE(auth_password_ok("12345678\xff"));  /* not UTF-8 */
}

static void test_password_hash_is_argon2id(void)
{
    char h[crypto_pwhash_STRBYTES];
    CU_ASSERT_EQUAL_FATAL(auth_password_hash("correct horse", h), 0);
    CU_ASSERT_EQUAL(strncmp(h, "$argon2id$v=19$", 15), 0);
    CU_ASSERT_PTR_NOT_NULL(strstr(h, "t=2,"));
    CU_ASSERT_PTR_NOT_NULL(strstr(h, "m=65536,"));        /* >= 19 MiB: INTERACTIVE */
    CU_ASSERT_EQUAL(crypto_pwhash_str_verify(h, "correct horse", 13), 0);
    CU_ASSERT_NOT_EQUAL(crypto_pwhash_str_verify(h, "correct horsf", 13), 0);
    /* a cheaper old hash is flagged for rehashing */
    char weak[crypto_pwhash_STRBYTES];
    CU_ASSERT_EQUAL_FATAL(crypto_pwhash_str_alg(weak, "pw", 2, 1, 8192 * 1024,
                                                crypto_pwhash_ALG_ARGON2ID13), 0);
    CU_ASSERT_NOT_EQUAL(crypto_pwhash_str_needs_rehash(weak, 2, 64u * 1024 * 1024), 0);
}

int main(void)
{
    if (sodium_init() < 0 || CU_initialize_registry() != CUE_SUCCESS)
        return 1;
    CU_pSuite s = CU_add_suite("auth_input", NULL, NULL);
    CU_add_test(s, "email trimmed and case-folded", test_email_trim_and_fold);
    CU_add_test(s, "email shapes rejected", test_email_rejects);
    CU_add_test(s, "email length in characters", test_email_length_in_characters);
    CU_add_test(s, "email shape at registration", test_email_shape);
    CU_add_test(s, "password 8-128 characters", test_password_length);
    CU_add_test(s, "password hash Argon2id", test_password_hash_is_argon2id);
    return cunit_run_all();
}
