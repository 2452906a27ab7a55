/* config.c: KEY=VALUE settings.  The file (named by $SHOP_CONFIG) holds what
 * a deployment writes once (DB address, key paths, secrets); the environment
 * (SHOP_<KEY>) overrides any of it for tests and one-off runs.  Lines are
 * "KEY=VALUE"; blank lines and lines starting with # are ignored; the value
 * is everything after the first '=', with surrounding blanks trimmed. */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "log.h"

typedef struct config_entry {
    char *key, *value;
} config_entry;

static config_entry *config_entries;
static size_t config_n, config_cap;

static char *trim(char *s)
{
    while (isspace((unsigned char)*s))
        s++;
    char *e = s + strlen(s);
    while (e > s && isspace((unsigned char)e[-1]))
        *--e = '\0';
    return s;
}

static int config_put(const char *key, const char *value)
{
    for (size_t i = 0; i < config_n; i++)
        if (strcmp(config_entries[i].key, key) == 0) {
            char *v = strdup(value);
            if (!v)
                return -1;
            free(config_entries[i].value);
            config_entries[i].value = v;
            return 0;
        }
    if (config_n == config_cap) {
        size_t cap = config_cap ? config_cap * 2 : 16;
        config_entry *e = realloc(config_entries, cap * sizeof *e);
        if (!e)
            return -1;
        config_entries = e;
        config_cap = cap;
    }
    config_entries[config_n].key = strdup(key);
    config_entries[config_n].value = strdup(value);
    if (!config_entries[config_n].key || !config_entries[config_n].value) {
        free(config_entries[config_n].key);
        free(config_entries[config_n].value);
        return -1;
    }
    config_n++;
    return 0;
}

int config_load_file(const char *path)
{
    FILE *f = fopen(path, "r");
    if (!f) {
        log_error("config: cannot open %s: %s", path, strerror(errno));
        return -1;
    }
    char line[4096];
    int lineno = 0, rc = 0;
    while (fgets(line, sizeof line, f)) {
        lineno++;
        char *s = trim(line);
        if (*s == '\0' || *s == '#')
            continue;
        char *eq = strchr(s, '=');
        if (!eq) {
            log_error("config: %s:%d: expected KEY=VALUE", path, lineno);
            rc = -1;
            break;
        }
        *eq = '\0';
        if (config_put(trim(s), trim(eq + 1)) != 0) {
            rc = -1;
            break;
        }
    }
    fclose(f);
    return rc;
}

int config_load(void)
{
    const char *path = getenv("SHOP_CONFIG");
    return path && *path ? config_load_file(path) : 0;
}

const char *config_get(const char *key, const char *def)
{
    char env[256];
    snprintf(env, sizeof env, "SHOP_%s", key);
    const char *v = getenv(env);
    if (v)
        return v;
    for (size_t i = 0; i < config_n; i++)
        if (strcmp(config_entries[i].key, key) == 0)
            return config_entries[i].value;
    return def;
}

long long config_int(const char *key, long long def)
{
    const char *v = config_get(key, NULL);
    if (!v || !*v)
        return def;
    char *end;
    errno = 0;
    long long n = strtoll(v, &end, 10);
    if (errno || *end) {
        log_warn("config: %s=%s is not an integer; using %lld", key, v, def);
        return def;
    }
    return n;
}

long long config_now_ms(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (long long)t.tv_sec * 1000 + t.tv_nsec / 1000000;
}

bool config_due(const char *key, long long def, struct timespec *next)
{
    struct timespec now;
    if (clock_gettime(CLOCK_MONOTONIC, &now) != 0)
        return false;
    if (next->tv_sec != 0 && now.tv_sec < next->tv_sec)
        return false;
    long long every = config_int(key, def);
    next->tv_sec = now.tv_sec + (every < 1 ? 1 : every);
    return true;
}

void config_free(void)
{
    for (size_t i = 0; i < config_n; i++) {
        free(config_entries[i].key);
        free(config_entries[i].value);
    }
    free(config_entries);
    config_entries = NULL;
    config_n = config_cap = 0;
}
