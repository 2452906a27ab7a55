/* config.h: settings from a KEY=VALUE file named by $SHOP_CONFIG, each
 * overridable by the environment variable SHOP_<KEY>.  Values are read once
 * at start; lookups are cheap. */
#ifndef SHOP_CONFIG_H
#define SHOP_CONFIG_H

#include <stdbool.h>
#include <time.h>

/* Loads $SHOP_CONFIG when set (missing file: error).  Returns 0 or -1. */
int config_load(void);
/* Loads an explicit file (tests). */
int config_load_file(const char *path);

/* SHOP_<key> from the environment, else the file's value, else def. */
const char *config_get(const char *key, const char *def);
long long config_int(const char *key, long long def);

/* A periodic step's schedule: true on the first call, then at most once
 * per `key` seconds (config, default def, at least 1) on the monotonic
 * clock.  *next is the caller's (static, zeroed) memory of when. */
bool config_due(const char *key, long long def, struct timespec *next);

/* The monotonic clock in milliseconds: for timeouts, budgets and waits
 * (never a wall-clock time). */
long long config_now_ms(void);

/* Frees everything (tests, leak checks). */
void config_free(void);

#endif
