/* main.c: the auth service's entry point: its route table and the FastCGI
 * loop, plus the operator's CLI mode
 *   auth.fcgi --create-user EMAIL ROLE [NAME]   (password: $SHOP_NEW_USER_PASSWORD)
 * which creates a user or resets an existing one's role and password; the
 * stack uses it to make the admin.  --sweep runs the retention sweep forever
 * and --sweep-once runs one pass (sweep.c). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "db.h"
#include "handlers.h"
#include "json.h"
#include "log.h"
#include "outbox.h"
#include "server.h"
#include "store.h"
#include "sweep.h"
#include "token.h"

static const route auth_routes[] = {
    {"POST", "/auth/register", ROUTE_ANYONE, true, auth_register},
    {"POST", "/auth/login", ROUTE_ANYONE, true, auth_login},
    {"POST", "/auth/refresh", ROUTE_ANYONE, true, auth_refresh},
    {"POST", "/auth/logout", ROUTE_ANYONE, true, auth_logout},
    {"GET", "/auth/me", ROUTE_USER, false, auth_me},
    {"POST", "/auth/password", ROUTE_USER, true, auth_password_change},
    {"GET", "/auth/users/{id}", ROUTE_USER, false, auth_user_get},
    {"PATCH", "/auth/users/{id}", ROUTE_ADMIN, true, auth_user_patch},
    {"GET", "/auth/jwks.json", ROUTE_PUBLIC, false, auth_jwks},
    {"GET", "/auth/health", ROUTE_PUBLIC, false, server_health},
};

/* --create-user: exits 0 when the user exists with that role and password. */
static int auth_cli_create_user(int argc, char **argv)
{
    log_init("auth", LOG_INFO);
    if (argc < 4 || argc > 5) {
        fprintf(stderr, "usage: %s --create-user EMAIL ROLE [NAME]  (password in $SHOP_NEW_USER_PASSWORD)\n",
                argv[0]);
        return 1;
    }
    const char *email_in = argv[2], *name = argc == 5 ? argv[4] : NULL;
    const char *password = getenv("SHOP_NEW_USER_PASSWORD");
    user_role role = token_role_parse(argv[3]);
    char email[STORE_EMAIL_MAX * 4 + 1], norm[STORE_EMAIL_MAX * 4 + 1];
    if (auth_email_normalize(email_in, email, norm) != 0) {
        fprintf(stderr, "create-user: '%s' is not a valid email address\n", email_in);
        return 1;
    }
    if (role == USER_ANON) {
        fprintf(stderr, "create-user: role must be customer, seller or admin\n");
        return 1;
    }
    if (!auth_password_ok(password)) {
        fprintf(stderr, "create-user: SHOP_NEW_USER_PASSWORD must hold 8-128 characters\n");
        return 1;
    }
    long nl = name ? json_utf8_len(name, strlen(name)) : 0;
    if (nl < 0 || nl > STORE_NAME_MAX) {
        fprintf(stderr, "create-user: NAME must be valid UTF-8 of at most %d characters\n",
                STORE_NAME_MAX);
        return 1;
    }
    if (server_setup("auth") != 0) {
        fprintf(stderr, "create-user: setup failed (configuration in $SHOP_CONFIG, database)\n");
        return 1;
    }
    char hash[crypto_pwhash_STRBYTES];
    int64_t id = auth_password_hash(password, hash) == 0
                     ? store_user_upsert(email, norm, name, role, password, hash) : DB_ERROR;
    db_close();
    config_free();
    if (id == STORE_INVALID_STATE) {
        fprintf(stderr, "create-user: %s is the only admin: make another user admin first\n",
                email);
        return 1;
    }
    if (id <= 0) {
        fprintf(stderr, "create-user: database error (%lld, errno %u)\n", (long long)id, db_errno());
        return 1;
    }
    printf("user %lld %s role %s\n", (long long)id, email, token_role_name(role));
    return 0;
}

int main(int argc, char **argv)
{
    if (argc > 1 && strcmp(argv[1], "--create-user") == 0)
        return auth_cli_create_user(argc, argv);
    if (argc == 2 && strcmp(argv[1], "--sweep") == 0)
        return auth_sweep_main(false);
    if (argc == 2 && strcmp(argv[1], "--sweep-once") == 0)
        return auth_sweep_main(true);
    if (argc > 1) {
        fprintf(stderr, "usage: %s [--create-user EMAIL ROLE [NAME] | --sweep | --sweep-once]\n", argv[0]);
        return 2;
    }
    /* /auth/metrics adds the outbox lag (lib/outbox.h). */
    server_set_metrics_extra(outbox_metrics);
    return server_run("auth", auth_routes, sizeof auth_routes / sizeof auth_routes[0], auth_init);
}
