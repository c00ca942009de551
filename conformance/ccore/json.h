/* SPDX-License-Identifier: MIT */
/*
 * json.h - a small JSON reader and writer for the wire protocol's messages.
 *
 * The reader takes one JSON text (one line of the protocol) and gives a tree
 * of values. It reads everything the protocol's messages hold: objects,
 * arrays, integers (the whole unsigned 64-bit range, and negative ones down
 * to -2^63), booleans, null, and strings with every escape, \uXXXX and
 * surrogate pairs included. It refuses what the protocol never sends:
 * numbers with a fraction or an exponent, duplicate keys, and nesting deeper
 * than JSON_MAX_DEPTH.
 *
 * The writer appends to a growing buffer (w->buf, w->len; free(w->buf) when
 * done); the caller writes the punctuation of its fixed-shape messages and
 * lets the writer spell strings and numbers.
 */
#ifndef HMM_CCORE_JSON_H
#define HMM_CCORE_JSON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define JSON_MAX_DEPTH	16

enum json_type {
	JSON_NULL,
	JSON_BOOL,
	JSON_INT,
	JSON_STRING,
	JSON_ARRAY,
	JSON_OBJECT,
};

struct json_member;

struct json_value {
	enum json_type type;
	union {
		bool boolean;
		struct {
			bool negative;
			uint64_t magnitude;
		} integer;
		struct {
			char *chars;	/* NUL-terminated; may hold NULs */
			size_t len;
		} string;
		struct {
			struct json_value *items;
			size_t count;
		} array;
		struct {
			struct json_member *members;
			size_t count;
		} object;
	};
};

struct json_member {
	struct json_value key;		/* a JSON_STRING */
	struct json_value value;
};

/* The value of @text, or NULL with *@error saying what is wrong. */
struct json_value *json_parse(const char *text, size_t len,
			      const char **error);
void json_free(struct json_value *value);

/* @object's member @key, or NULL if it has none (or is no object). */
const struct json_value *json_get(const struct json_value *object,
				  const char *key);
/* Does @value equal the string @s? */
bool json_is_string(const struct json_value *value, const char *s);
/* Is every key of @object one of the NULL-terminated @keys? */
bool json_keys_within(const struct json_value *object,
		      const char *const *keys);

struct json_writer {
	char *buf;
	size_t len;
	size_t cap;
};

void jw_raw(struct json_writer *w, const char *s);
void jw_string(struct json_writer *w, const char *s);
void jw_u64(struct json_writer *w, uint64_t value);
void jw_int(struct json_writer *w, int value);
void jw_bool(struct json_writer *w, bool value);

#endif /* HMM_CCORE_JSON_H */
