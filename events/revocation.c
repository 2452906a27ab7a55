/* revocation.c: see revocation.h. */
#include "revocation.h"

#include <ctype.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "config.h"
#include "log.h"
#include "revoke.h"
#include "token.h"

/* Tokens carry at most ACCESS_TTL seconds of life, and verification allows
 * some clock skew: entries older than both together guard nothing. */
#define REVOCATION_SKEW_MS (120 * 1000)

int revocation_init(void)
{
    const char *path = config_get("REVOKE_FILE", NULL);
    if (!path || !*path) {
        log_error("revoke: REVOKE_FILE is not set");
        return -1;
    }
    return revoke_writer_open(path, revoke_now_ms());
}

int64_t revocation_time_ms(const char *s)
{
    if (!s)
        return -1;
    struct tm tm;
    memset(&tm, 0, sizeof tm);
    int used = 0;
    if (sscanf(s, "%4d-%2d-%2dT%2d:%2d:%2d%n", &tm.tm_year, &tm.tm_mon, &tm.tm_mday, &tm.tm_hour,
               &tm.tm_min, &tm.tm_sec, &used) != 6 || used != 19)
        return -1;
    for (int i = 0; i < 19; i++)     /* digits where digits belong, no signs or spaces */
        if ((i == 4 || i == 7) ? s[i] != '-' : i == 10 ? s[i] != 'T'
            : (i == 13 || i == 16) ? s[i] != ':' : !isdigit((unsigned char)s[i]))
            return -1;
    const char *p = s + 19;
    int64_t ms = 0;
    if (*p == '.') {
        int digits = 0;
        for (p++; isdigit((unsigned char)*p); p++, digits++)
            if (digits < 3)
                ms = ms * 10 + (*p - '0');
        if (digits == 0 || digits > 9)
            return -1;
        for (; digits < 3; digits++)
            ms *= 10;
    }
    if (strcmp(p, "Z") != 0 || tm.tm_mon < 1 || tm.tm_mon > 12 || tm.tm_mday < 1 ||
        tm.tm_mday > 31 || tm.tm_hour > 23 || tm.tm_min > 59 || tm.tm_sec > 60)
        return -1;
    tm.tm_year -= 1900;
    tm.tm_mon -= 1;
    time_t t = timegm(&tm);
    if (t < 0)
        return -1;
    return (int64_t)t * 1000 + ms;
}

int revocation_handle(const event *ev, void *ctx)
{
    (void)ctx;
    if (strcmp(ev->type, "user.role_changed") != 0 && strcmp(ev->type, "user.password_changed") != 0 &&
        strcmp(ev->type, "user.tokens_revoked") != 0) {
        log_warn("revoke: event %s of type %s ignored", ev->id, ev->type);
        return CONSUME_OK;
    }
    json_object *v = NULL, *w = NULL;
    int64_t uid = 0, at = -1;
    if (ev->data && json_object_is_type(ev->data, json_type_object) &&
        json_object_object_get_ex(ev->data, "user_id", &v) && json_object_is_type(v, json_type_int) &&
        json_object_object_get_ex(ev->data, "changed_at", &w) && json_object_is_type(w, json_type_string)) {
        uid = json_object_get_int64(v);
        at = revocation_time_ms(json_object_get_string(w));
    }
    if (uid <= 0 || at < 0) {
        log_error("revoke: event %s (%s) lacks a usable data.user_id / data.changed_at", ev->id, ev->type);
        return CONSUME_DEAD;
    }
    int64_t now = revoke_now_ms();
    int64_t keep = config_int("ACCESS_TTL", 900) * 1000 + REVOCATION_SKEW_MS;
    if (at < now - keep) {
        log_info("revoke: event %s for user %" PRId64 " is older than any live token: nothing to do",
                 ev->id, uid);
        return CONSUME_OK;
    }
    /* A reused refresh token names its login (data.session): only that
     * login's tokens die.  Without one (role or password change, or an
     * event from before logins were named), all the user's do. */
    const char *sid = NULL;
    if (strcmp(ev->type, "user.tokens_revoked") == 0 &&
        json_object_object_get_ex(ev->data, "session", &v)) {
        sid = json_object_is_type(v, json_type_string) ? json_object_get_string(v) : NULL;
        if (!token_sid_valid(sid)) {
            log_error("revoke: event %s (%s) has a malformed data.session", ev->id, ev->type);
            return CONSUME_DEAD;
        }
    }
    int rc = sid ? revoke_add_session(sid, at, now, keep) : revoke_add(uid, at, now, keep);
    if (rc < 0) {
        log_error("revoke: event %s: the list could not be written", ev->id);
        return CONSUME_RETRY;
    }
    log_info("revoke: event %s: tokens of user %" PRId64 "%s%s issued before %s void on this host%s (%" PRId64
             " ms after the change)", ev->id, uid, sid ? " of sign-in " : "", sid ? sid : "",
             json_object_get_string(w), rc == 1 ? " (list full: every token before it)" : "", now - at);
    return CONSUME_OK;
}
