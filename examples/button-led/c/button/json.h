/* A JSON string for `aex status`: what a C driver reports is read as JSON. */
#ifndef BUTTON_JSON_H
#define BUTTON_JSON_H

#include <stddef.h>
#include <stdio.h>

/* Writes `text` as a JSON string (quoted, escaped) into `out` (`cap` bytes, NUL-terminated);
 * returns the length written, at most cap - 1: a text too long is cut, still quoted. */
static inline int json_string(char *out, size_t cap, const char *text) {
    size_t n = 0;
    if (cap < 3) return 0;
    out[n++] = '"';
    for (const char *p = text; *p && n + 8 < cap; p++) {
        unsigned char c = (unsigned char)*p;
        if (c == '"' || c == '\\') {
            out[n++] = '\\';
            out[n++] = (char)c;
        } else if (c < 0x20) {
            n += (size_t)snprintf(out + n, cap - n, "\\u%04x", c);
        } else {
            out[n++] = (char)c;
        }
    }
    out[n++] = '"';
    out[n] = '\0';
    return (int)n;
}

#endif
