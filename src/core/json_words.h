/* json_words.h - the kind of a JSON value in words, for error messages
 * ("settings: must be an object, got array"). Header-only, so the pure core does not
 * link jansson; every file that includes it already does. */
#ifndef DRV_CORE_JSON_WORDS_H
#define DRV_CORE_JSON_WORDS_H

#include <jansson.h>

/* 0 object, 1 array, 2 string, 3 number, 4 boolean, 5 null, 6 anything else (NULL). */
static inline int drv_json_kind_index(const json_t *v)
{
    if (!v)
        return 6;
    switch (json_typeof(v)) {
    case JSON_OBJECT:
        return 0;
    case JSON_ARRAY:
        return 1;
    case JSON_STRING:
        return 2;
    case JSON_INTEGER:
    case JSON_REAL:
        return 3;
    case JSON_TRUE:
    case JSON_FALSE:
        return 4;
    case JSON_NULL:
        return 5;
    }
    return 6;
}

/* "object", "array", "string", "number", "boolean", "null"; "value" for NULL. */
static inline const char *drv_json_kind(const json_t *v)
{
    static const char *const words[] = {"object",  "array", "string", "number",
                                        "boolean", "null",  "value"};
    return words[drv_json_kind_index(v)];
}

/* The same with an article: "an object", "a number", "null". */
static inline const char *drv_json_kind_a(const json_t *v)
{
    static const char *const words[] = {"an object", "an array", "a string", "a number",
                                        "a boolean", "null",     "a value"};
    return words[drv_json_kind_index(v)];
}

#endif
