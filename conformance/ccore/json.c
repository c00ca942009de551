// SPDX-License-Identifier: MIT
/*
 * json.c - the reader and writer of json.h.
 *
 * The reader is a recursive descent over RFC 8259 with the limits json.h
 * gives. A function that fails leaves its value holding nothing to free, so
 * the caller only frees what was complete.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "json.h"

struct parser {
	const char *p;
	const char *end;
	const char *error;
	unsigned int depth;
};

static void *json_realloc(void *p, size_t n, size_t size)
{
	void *q = n > SIZE_MAX / size ? NULL : realloc(p, n * size);

	if (!q) {
		fputs("hmm-c: out of memory\n", stderr);
		abort();
	}
	return q;
}

static bool fail(struct parser *ps, const char *error)
{
	if (!ps->error)
		ps->error = error;
	return false;
}

static bool at(const struct parser *ps, char c)
{
	return ps->p < ps->end && *ps->p == c;
}

static bool at_digit(const struct parser *ps)
{
	return ps->p < ps->end && *ps->p >= '0' && *ps->p <= '9';
}

static void skip_space(struct parser *ps)
{
	while (at(ps, ' ') || at(ps, '\t') || at(ps, '\n') || at(ps, '\r'))
		ps->p++;
}

static void release(struct json_value *value)
{
	size_t i;

	switch (value->type) {
	case JSON_STRING:
		free(value->string.chars);
		break;
	case JSON_ARRAY:
		for (i = 0; i < value->array.count; i++)
			release(&value->array.items[i]);
		free(value->array.items);
		break;
	case JSON_OBJECT:
		for (i = 0; i < value->object.count; i++) {
			release(&value->object.members[i].key);
			release(&value->object.members[i].value);
		}
		free(value->object.members);
		break;
	case JSON_NULL:
	case JSON_BOOL:
	case JSON_INT:
		break;
	}
	value->type = JSON_NULL;
}

void json_free(struct json_value *value)
{
	if (value) {
		release(value);
		free(value);
	}
}

static bool parse_value(struct parser *ps, struct json_value *value);

static bool parse_literal(struct parser *ps, const char *word)
{
	size_t n = strlen(word);

	if ((size_t)(ps->end - ps->p) < n || memcmp(ps->p, word, n))
		return fail(ps, "an unknown word");
	ps->p += n;
	return true;
}

static bool parse_integer(struct parser *ps, struct json_value *value)
{
	bool negative = at(ps, '-');
	uint64_t magnitude = 0;

	if (negative)
		ps->p++;
	if (!at_digit(ps))
		return fail(ps, "a number without digits");
	if (at(ps, '0') && ps->p + 1 < ps->end && ps->p[1] >= '0' &&
	    ps->p[1] <= '9')
		return fail(ps, "a number with a leading zero");
	while (at_digit(ps)) {
		unsigned int digit = (unsigned int)(*ps->p++ - '0');

		if (magnitude > (UINT64_MAX - digit) / 10)
			return fail(ps, "an integer beyond 64 bits");
		magnitude = magnitude * 10 + digit;
	}
	if (at(ps, '.') || at(ps, 'e') || at(ps, 'E'))
		return fail(ps, "a number that is not an integer");
	if (negative && magnitude > (uint64_t)INT64_MAX + 1)
		return fail(ps, "an integer below -2^63");
	value->type = JSON_INT;
	value->integer.negative = negative && magnitude;
	value->integer.magnitude = magnitude;
	return true;
}

static void jw_bytes(struct json_writer *w, const char *s, size_t n)
{
	if (w->len + n + 1 > w->cap) {
		w->cap = 2 * (w->len + n + 1);
		w->buf = json_realloc(w->buf, w->cap, 1);
	}
	memcpy(w->buf + w->len, s, n);
	w->len += n;
	w->buf[w->len] = '\0';
}

static void put_byte(struct json_writer *w, char c)
{
	jw_bytes(w, &c, 1);
}

static void put_utf8(struct json_writer *w, uint32_t cp)
{
	if (cp < 0x80) {
		put_byte(w, (char)cp);
	} else if (cp < 0x800) {
		put_byte(w, (char)(0xC0 | cp >> 6));
		put_byte(w, (char)(0x80 | (cp & 0x3F)));
	} else if (cp < 0x10000) {
		put_byte(w, (char)(0xE0 | cp >> 12));
		put_byte(w, (char)(0x80 | (cp >> 6 & 0x3F)));
		put_byte(w, (char)(0x80 | (cp & 0x3F)));
	} else {
		put_byte(w, (char)(0xF0 | cp >> 18));
		put_byte(w, (char)(0x80 | (cp >> 12 & 0x3F)));
		put_byte(w, (char)(0x80 | (cp >> 6 & 0x3F)));
		put_byte(w, (char)(0x80 | (cp & 0x3F)));
	}
}

static bool parse_hex4(struct parser *ps, uint32_t *cp)
{
	int i;

	*cp = 0;
	for (i = 0; i < 4; i++, ps->p++) {
		char c = ps->p < ps->end ? *ps->p : '\0';

		if (c >= '0' && c <= '9')
			*cp = *cp << 4 | (uint32_t)(c - '0');
		else if (c >= 'a' && c <= 'f')
			*cp = *cp << 4 | (uint32_t)(c - 'a' + 10);
		else if (c >= 'A' && c <= 'F')
			*cp = *cp << 4 | (uint32_t)(c - 'A' + 10);
		else
			return fail(ps, "a \\u escape without four hex digits");
	}
	return true;
}

/* After \u: one code point, a surrogate pair making one. */
static bool parse_unicode(struct parser *ps, struct json_writer *out)
{
	uint32_t cp, low;

	if (!parse_hex4(ps, &cp))
		return false;
	if (cp >= 0xDC00 && cp <= 0xDFFF)
		return fail(ps, "a lone low surrogate");
	if (cp >= 0xD800 && cp <= 0xDBFF) {
		if (ps->end - ps->p < 2 || ps->p[0] != '\\' || ps->p[1] != 'u')
			return fail(ps, "a high surrogate without its low one");
		ps->p += 2;
		if (!parse_hex4(ps, &low))
			return false;
		if (low < 0xDC00 || low > 0xDFFF)
			return fail(ps, "a high surrogate without its low one");
		cp = 0x10000 + ((cp - 0xD800) << 10) + (low - 0xDC00);
	}
	put_utf8(out, cp);
	return true;
}

static bool parse_escape(struct parser *ps, struct json_writer *out)
{
	static const char from[] = "\"\\/bfnrt";
	static const char to[] = "\"\\/\b\f\n\r\t";
	const char *which;

	if (ps->p == ps->end)
		return fail(ps, "an unterminated string");
	if (*ps->p == 'u') {
		ps->p++;
		return parse_unicode(ps, out);
	}
	which = memchr(from, *ps->p, sizeof(from) - 1);
	if (!which)
		return fail(ps, "an unknown escape");
	ps->p++;
	put_byte(out, to[which - from]);
	return true;
}

static bool parse_string(struct parser *ps, struct json_value *value)
{
	struct json_writer out = { 0 };

	ps->p++;	/* the opening quote */
	jw_raw(&out, "");
	for (;;) {
		unsigned char c;

		if (ps->p == ps->end) {
			free(out.buf);
			return fail(ps, "an unterminated string");
		}
		c = (unsigned char)*ps->p++;
		if (c == '"')
			break;
		if (c < 0x20) {
			free(out.buf);
			return fail(ps, "a control character in a string");
		}
		if (c != '\\') {
			put_byte(&out, (char)c);
		} else if (!parse_escape(ps, &out)) {
			free(out.buf);
			return false;
		}
	}
	value->type = JSON_STRING;
	value->string.chars = out.buf;
	value->string.len = out.len;
	return true;
}

static bool parse_array(struct parser *ps, struct json_value *value)
{
	struct json_value *items = NULL;
	size_t count = 0, cap = 0;

	ps->p++;
	skip_space(ps);
	if (at(ps, ']')) {
		ps->p++;
		goto done;
	}
	for (;;) {
		if (count == cap) {
			cap = cap ? 2 * cap : 4;
			items = json_realloc(items, cap, sizeof(*items));
		}
		if (!parse_value(ps, &items[count]))
			goto fail;
		count++;
		skip_space(ps);
		if (at(ps, ']')) {
			ps->p++;
			break;
		}
		if (!at(ps, ',')) {
			fail(ps, "an array without , or ]");
			goto fail;
		}
		ps->p++;
	}
done:
	value->type = JSON_ARRAY;
	value->array.items = items;
	value->array.count = count;
	return true;
fail:
	value->type = JSON_ARRAY;
	value->array.items = items;
	value->array.count = count;
	release(value);
	return false;
}

static bool parse_member(struct parser *ps, struct json_value *object,
			 struct json_member *member)
{
	size_t i;

	skip_space(ps);
	if (!at(ps, '"'))
		return fail(ps, "an object key that is not a string");
	if (!parse_string(ps, &member->key))
		return false;
	for (i = 0; i < object->object.count; i++) {
		const struct json_value *key = &object->object.members[i].key;

		if (key->string.len == member->key.string.len &&
		    !memcmp(key->string.chars, member->key.string.chars,
			    key->string.len)) {
			release(&member->key);
			return fail(ps, "a key given twice");
		}
	}
	skip_space(ps);
	if (!at(ps, ':')) {
		release(&member->key);
		return fail(ps, "an object key without :");
	}
	ps->p++;
	if (!parse_value(ps, &member->value)) {
		release(&member->key);
		return false;
	}
	return true;
}

static bool parse_object(struct parser *ps, struct json_value *value)
{
	size_t cap = 0;

	value->type = JSON_OBJECT;
	value->object.members = NULL;
	value->object.count = 0;
	ps->p++;
	skip_space(ps);
	if (at(ps, '}')) {
		ps->p++;
		return true;
	}
	for (;;) {
		if (value->object.count == cap) {
			cap = cap ? 2 * cap : 4;
			value->object.members =
				json_realloc(value->object.members, cap,
					     sizeof(*value->object.members));
		}
		if (!parse_member(ps, value,
				  &value->object.members[value->object.count]))
			break;
		value->object.count++;
		skip_space(ps);
		if (at(ps, '}')) {
			ps->p++;
			return true;
		}
		if (!at(ps, ',')) {
			fail(ps, "an object without , or }");
			break;
		}
		ps->p++;
	}
	release(value);
	return false;
}

static bool parse_nested(struct parser *ps, struct json_value *value)
{
	bool ok;

	if (++ps->depth > JSON_MAX_DEPTH)
		return fail(ps, "values nested too deep");
	ok = at(ps, '[') ? parse_array(ps, value) : parse_object(ps, value);
	ps->depth--;
	return ok;
}

static bool parse_value(struct parser *ps, struct json_value *value)
{
	value->type = JSON_NULL;
	skip_space(ps);
	if (ps->p == ps->end)
		return fail(ps, "no value");
	switch (*ps->p) {
	case '[':
	case '{':
		return parse_nested(ps, value);
	case '"':
		return parse_string(ps, value);
	case 't':
	case 'f':
		value->boolean = *ps->p == 't';
		if (!parse_literal(ps, value->boolean ? "true" : "false"))
			return false;
		value->type = JSON_BOOL;
		return true;
	case 'n':
		return parse_literal(ps, "null");
	}
	if (!at(ps, '-') && !at_digit(ps))
		return fail(ps, "an unexpected character");
	return parse_integer(ps, value);
}

struct json_value *json_parse(const char *text, size_t len,
			      const char **error)
{
	struct parser ps = { .p = text, .end = text + len };
	struct json_value *value = json_realloc(NULL, 1, sizeof(*value));

	if (parse_value(&ps, value)) {
		skip_space(&ps);
		if (ps.p == ps.end)
			return value;
		fail(&ps, "more after the value");
	}
	json_free(value);
	*error = ps.error;
	return NULL;
}

const struct json_value *json_get(const struct json_value *object,
				  const char *key)
{
	size_t i;

	if (!object || object->type != JSON_OBJECT)
		return NULL;
	for (i = 0; i < object->object.count; i++)
		if (json_is_string(&object->object.members[i].key, key))
			return &object->object.members[i].value;
	return NULL;
}

bool json_is_string(const struct json_value *value, const char *s)
{
	size_t n = strlen(s);

	return value && value->type == JSON_STRING &&
	       value->string.len == n && !memcmp(value->string.chars, s, n);
}

bool json_keys_within(const struct json_value *object,
		      const char *const *keys)
{
	size_t i;

	for (i = 0; i < object->object.count; i++) {
		const char *const *key = keys;

		while (*key && !json_is_string(&object->object.members[i].key,
					       *key))
			key++;
		if (!*key)
			return false;
	}
	return true;
}

void jw_raw(struct json_writer *w, const char *s)
{
	jw_bytes(w, s, strlen(s));
}

void jw_string(struct json_writer *w, const char *s)
{
	jw_raw(w, "\"");
	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;
		char escaped[8];

		if (c == '"' || c == '\\') {
			snprintf(escaped, sizeof(escaped), "\\%c", c);
		} else if (c < 0x20) {
			snprintf(escaped, sizeof(escaped), "\\u%04x", c);
		} else {
			put_byte(w, (char)c);
			continue;
		}
		jw_raw(w, escaped);
	}
	jw_raw(w, "\"");
}

void jw_u64(struct json_writer *w, uint64_t value)
{
	char s[24];

	snprintf(s, sizeof(s), "%" PRIu64, value);
	jw_raw(w, s);
}

void jw_int(struct json_writer *w, int value)
{
	char s[16];

	snprintf(s, sizeof(s), "%d", value);
	jw_raw(w, s);
}

void jw_bool(struct json_writer *w, bool value)
{
	jw_raw(w, value ? "true" : "false");
}
