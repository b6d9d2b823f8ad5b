/* markup.c - text escaped for XML and HTML (the JUnit report, the simulator's HTML
 * report): one escaper, so both agree on what is safe. */
#include "core/markup.h"

#include <string.h>

/* Decodes one UTF-8 character at s (n bytes left) into *cp; returns its length, or 0
 * for an invalid sequence (overlong, surrogate, past U+10FFFF, truncated). */
static size_t utf8_decode(const unsigned char *s, size_t n, unsigned *cp)
{
    unsigned c = s[0];
    size_t len;
    unsigned min;
    if (c < 0x80) {
        *cp = c;
        return 1;
    } else if (c >= 0xC2 && c <= 0xDF) {
        len = 2, min = 0x80, c &= 0x1F;
    } else if (c >= 0xE0 && c <= 0xEF) {
        len = 3, min = 0x800, c &= 0x0F;
    } else if (c >= 0xF0 && c <= 0xF4) {
        len = 4, min = 0x10000, c &= 0x07;
    } else {
        return 0;
    }
    if (n < len)
        return 0;
    for (size_t i = 1; i < len; i++) {
        if ((s[i] & 0xC0) != 0x80)
            return 0;
        c = (c << 6) | (s[i] & 0x3F);
    }
    if (c < min || c > 0x10FFFF || (c >= 0xD800 && c <= 0xDFFF))
        return 0;
    *cp = c;
    return len;
}

/* True for a character XML 1.0 allows in a document. */
static bool xml_allowed(unsigned cp)
{
    return cp == 0x9 || cp == 0xA || cp == 0xD || (cp >= 0x20 && cp <= 0xD7FF) ||
           (cp >= 0xE000 && cp <= 0xFFFD) || (cp >= 0x10000 && cp <= 0x10FFFF);
}

/* See markup.h. */
void drv_markup_escape_n(FILE *out, const char *s, size_t n, bool attr)
{
    if (!s)
        return;
    const unsigned char *p = (const unsigned char *)s;
    while (n > 0) {
        unsigned cp = 0;
        size_t len = utf8_decode(p, n, &cp);
        if (len == 0) {
            fputs("\xEF\xBF\xBD", out);
            p++, n--;
            continue;
        }
        switch (cp) {
        case '&':
            fputs("&amp;", out);
            break;
        case '<':
            fputs("&lt;", out);
            break;
        case '>':
            fputs("&gt;", out);
            break;
        case '"':
            fputs("&quot;", out);
            break;
        case '\'':
            fputs("&apos;", out);
            break;
        case '\r':
            fputs("&#13;", out);
            break;
        case '\n':
        case '\t':
            if (attr)
                fprintf(out, "&#%u;", cp);
            else
                fputc((int)cp, out);
            break;
        default:
            if (xml_allowed(cp))
                fwrite(p, 1, len, out);
            else /* NUL, escape codes: shown, not lost (XML cannot carry them at all) */
                fprintf(out, "\\x%02X", cp);
        }
        p += len, n -= len;
    }
}

/* drv_markup_escape_n() of a NUL-terminated string. */
void drv_markup_escape(FILE *out, const char *s, bool attr)
{
    drv_markup_escape_n(out, s, s ? strlen(s) : 0, attr);
}
