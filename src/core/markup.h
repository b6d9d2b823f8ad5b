/* markup.h - text escaped for XML 1.0 and HTML.
 *
 * Pure: writes to the stream it is given, allocates nothing. */
#ifndef DRV_CORE_MARKUP_H
#define DRV_CORE_MARKUP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

/* Writes the n bytes at s escaped: & < > " ' as entities, characters XML 1.0 forbids
 * (NUL and the other control characters but tab and line breaks) dropped, bytes that are
 * not UTF-8 as U+FFFD. In an attribute (attr) tab and line breaks are written as
 * character references, so a parser gives them back instead of spaces; CR always is.
 * The result is safe as element text and inside a double- or single-quoted attribute,
 * in XML and in HTML. NULL writes nothing. */
void drv_markup_escape_n(FILE *out, const char *s, size_t n, bool attr);
/* drv_markup_escape_n() of a NUL-terminated string. */
void drv_markup_escape(FILE *out, const char *s, bool attr);

#endif
