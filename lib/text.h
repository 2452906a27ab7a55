/* text.h: a growing string built with printf-style appends (the metrics
 * exposition, an email).  On allocation failure it stays failed, and
 * text_take() then frees what was built and returns NULL. */
#ifndef SHOP_TEXT_H
#define SHOP_TEXT_H

#include <stdbool.h>
#include <stddef.h>

typedef struct text_buf {
  char *s;
  size_t len, cap;
  bool failed;
} text_buf;

/* Appends the formatted text (nothing once the buffer failed). */
void text_put(text_buf *b, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* The built string (malloc'd, the caller frees it), or NULL when an
 * allocation failed or nothing was appended. */
char *text_take(text_buf *b);

#endif
