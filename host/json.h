/*
 * json.h - a small, defensive JSON (RFC 8259) DOM parser for untrusted
 * input such as package manifests.
 *
 * Limits and choices:
 *   - input is a (pointer, length) pair; it need not be NUL-terminated and
 *     is never read past len;
 *   - nesting deeper than JV_MAX_DEPTH arrays/objects is rejected;
 *   - strings must be valid UTF-8; \uXXXX escapes (including surrogate
 *     pairs) are decoded to UTF-8; lone surrogates and \u0000 are rejected
 *     (strings are handed out as C strings);
 *   - duplicate keys in one object are rejected;
 *   - numbers follow the JSON grammar strictly and must be finite doubles;
 *   - nothing but whitespace may follow the top-level value.
 * Every failure returns NULL with a message ("line L, column C: ...") in
 * err; no input makes the parser crash or read out of bounds.
 *
 * Accessors are NULL-safe: a NULL or wrongly-typed value gives NULL / 0 /
 * the default.
 */
#ifndef CR_JSON_H
#define CR_JSON_H

#include <stddef.h>

#include "util.h"

#define JV_MAX_DEPTH 64

typedef enum { JV_NULL, JV_BOOL, JV_NUM, JV_STR, JV_ARR, JV_OBJ } jv_type;
typedef struct jv jv;

/* Parses text[0..len). Returns the root (free with jv_free) or NULL. */
jv *jv_parse(const char *text, size_t len, char *err, size_t errlen);
void jv_free(jv *v);

jv_type jv_typeof(const jv *v);       /* JV_NULL for NULL */
/* Member of an object by key (NULL if missing or v is not an object). */
const jv *jv_get(const jv *obj, const char *key);
/* Elements of an array / members of an object / bytes of a string; else 0. */
size_t jv_len(const jv *v);
/* Element i of an array (NULL if out of range or not an array). */
const jv *jv_at(const jv *arr, size_t i);
/* Key / value of member i of an object, in document order. */
const char *jv_key_at(const jv *obj, size_t i);
const jv *jv_val_at(const jv *obj, size_t i);
const char *jv_str(const jv *v);      /* NULL if not a string */
double jv_num(const jv *v, double dflt);
int jv_bool(const jv *v, int dflt);   /* 0/1, or dflt if not a bool */

/* Appends compact JSON for v to b (NULL writes null). */
void jv_dump(jbuf *b, const jv *v);

#endif
