// SPDX-License-Identifier: MIT
/*
 * wire.c - the framing of a wire server: lines, fields, calls, replies, the
 * hello and the request loop (wire.h).
 */
#define _POSIX_C_SOURCE 200809L

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>

#include "wire.h"

#define MAX_LINE	(1 << 20)

#ifndef WIRE_SERVER_VERSION
#define WIRE_SERVER_VERSION "unversioned"
#endif

static uint64_t next_call_id = 1;
static char *line;		/* the last line read, for diagnostics */

_Noreturn void wire_error(const char *problem)
{
	fprintf(stderr, "%s: protocol error: %s\n", wire_server.name, problem);
	if (line)
		fprintf(stderr, "%s: in the line: %.300s\n", wire_server.name,
			line);
	exit(2);
}

void wire_send(struct json_writer *w)
{
	jw_raw(w, "\n");
	fwrite(w->buf, 1, w->len, stdout);
	fflush(stdout);
	free(w->buf);
}

/* The next message, an object; the harness has gone if input ends. */
static struct json_value *receive(void)
{
	static size_t cap;
	struct json_value *message;
	const char *error;
	ssize_t len = getline(&line, &cap, stdin);

	if (len < 0)
		exit(EXIT_SUCCESS);
	if (len > MAX_LINE)
		wire_error("a line longer than 1 MiB");
	if (len && line[len - 1] == '\n')
		line[--len] = '\0';
	message = json_parse(line, (size_t)len, &error);
	if (!message)
		wire_error(error);
	if (message->type != JSON_OBJECT)
		wire_error("a message that is not an object");
	return message;
}

void wire_expect_keys(const struct json_value *object,
		      const char *const *keys)
{
	if (!json_keys_within(object, keys))
		wire_error("a field this message does not have");
}

const struct json_value *wire_field(const struct json_value *object,
				    const char *key)
{
	const struct json_value *value = json_get(object, key);

	if (!value)
		wire_error("a field missing");
	return value;
}

uint64_t wire_field_u64(const struct json_value *object, const char *key)
{
	const struct json_value *value = wire_field(object, key);

	if (value->type != JSON_INT || value->integer.negative)
		wire_error("a field that should be an unsigned integer");
	return value->integer.magnitude;
}

bool wire_field_bool(const struct json_value *object, const char *key)
{
	const struct json_value *value = wire_field(object, key);

	if (value->type != JSON_BOOL)
		wire_error("a field that should be true or false");
	return value->boolean;
}

int wire_field_small(const struct json_value *object, const char *key,
		     const char *too_large)
{
	uint64_t value = wire_field_u64(object, key);

	if (value > INT_MAX)
		wire_error(too_large);
	return (int)value;
}

int wire_int(const struct json_value *value)
{
	uint64_t limit;

	if (value->type != JSON_INT)
		wire_error("an answer that should be an integer");
	limit = value->integer.negative ? (uint64_t)INT_MAX + 1 : INT_MAX;
	if (value->integer.magnitude > limit)
		wire_error("an answer beyond a C int");
	return value->integer.negative ?
	       (int)(-(int64_t)value->integer.magnitude) :
	       (int)value->integer.magnitude;
}

void wire_u64s(const struct json_value *array, uint64_t *out,
	       const char *problem)
{
	size_t i;

	for (i = 0; i < array->array.count; i++) {
		const struct json_value *item = &array->array.items[i];

		if (item->type != JSON_INT || item->integer.negative)
			wire_error(problem);
		out[i] = item->integer.magnitude;
	}
}

void wire_vma(const struct json_value *vma, struct wire_vma *out)
{
	static const char *const keys[] = {
		"start", "end", "read", "write", "special", NULL
	};

	if (vma->type != JSON_OBJECT)
		wire_error("a vma that is not an object");
	wire_expect_keys(vma, keys);
	out->start = wire_field_u64(vma, "start");
	out->end = wire_field_u64(vma, "end");
	out->read = wire_field_bool(vma, "read");
	out->write = wire_field_bool(vma, "write");
	out->special = wire_field_bool(vma, "special");
}

static void field_triple(const struct json_value *encoding, const char *key,
			 uint64_t triple[3])
{
	const struct json_value *array = wire_field(encoding, key);

	if (array->type != JSON_ARRAY || array->array.count != 3)
		wire_error("an encoding array without three entries");
	wire_u64s(array, triple, "an encoding entry that is not a u64");
}

uint64_t wire_encoding(const struct json_value *encoding, uint64_t flags[3],
		       uint64_t values[3])
{
	static const char *const keys[] = {
		"flags", "values", "pfn_shift", NULL
	};

	if (encoding->type != JSON_OBJECT)
		wire_error("an encoding that is not an object");
	wire_expect_keys(encoding, keys);
	field_triple(encoding, "flags", flags);
	field_triple(encoding, "values", values);
	return wire_field_u64(encoding, "pfn_shift");
}

uint64_t wire_begin_call(struct json_writer *w, const char *method)
{
	jw_raw(w, "{\"type\":\"call\",\"id\":");
	jw_u64(w, next_call_id);
	jw_raw(w, ",\"method\":");
	jw_string(w, method);
	return next_call_id++;
}

static void serve_request(const struct json_value *request);

struct json_value *wire_call(struct json_writer *w, uint64_t id,
			     const char *const *keys)
{
	jw_raw(w, "}");
	wire_send(w);
	for (;;) {
		struct json_value *message = receive();
		const struct json_value *type = wire_field(message, "type");

		if (wire_server.serves_while_waiting &&
		    json_is_string(type, "request")) {
			serve_request(message);
			json_free(message);
			continue;
		}
		if (!json_is_string(type, "answer"))
			wire_error("a message that is no answer while a call waits");
		wire_expect_keys(message, keys);
		if (wire_field_u64(message, "id") != id)
			wire_error("an answer to another call than the one waiting");
		return message;
	}
}

void wire_reply(uint64_t id, int ret, struct json_writer *result)
{
	struct json_writer w = { 0 };
	const char *message;

	jw_raw(&w, "{\"type\":\"reply\",\"id\":");
	jw_u64(&w, id);
	if (ret <= -wire_server.first_refusal) {
		jw_raw(&w, ",\"error\":{\"kind\":");
		jw_string(&w, wire_server.refusal(ret, &message));
		jw_raw(&w, ",\"message\":");
		jw_string(&w, message);
		jw_raw(&w, "}");
	} else {
		jw_raw(&w, ",\"result\":");
		jw_raw(&w, result->buf);
	}
	if (wire_server.reply_extra)
		wire_server.reply_extra(&w);
	jw_raw(&w, "}");
	free(result->buf);
	wire_send(&w);
}

void wire_reply_null(uint64_t id, int ret)
{
	struct json_writer result = { 0 };

	jw_raw(&result, "null");
	wire_reply(id, ret, &result);
}

void wire_reply_int(uint64_t id, int ret)
{
	struct json_writer result = { 0 };

	jw_int(&result, ret);
	wire_reply(id, ret, &result);
}

void wire_reply_bool(uint64_t id, int ret)
{
	struct json_writer result = { 0 };

	jw_bool(&result, ret == 1);
	wire_reply(id, ret, &result);
}

/* Hand @request to its method, after checking its fields. */
static void serve_request(const struct json_value *request)
{
	const struct json_value *name = wire_field(request, "method");
	const struct wire_method *method = wire_server.methods;
	const struct wire_method *end = method + wire_server.nr_methods;
	const char *common = wire_server.common_field;
	const char *keys[4 + WIRE_MAX_FIELDS + 1] = { "type", "id", "method" };
	const struct json_value *value;
	size_t i, n = 3;
	uint64_t id = wire_field_u64(request, "id");

	if (!id)
		wire_error("a request id of 0");
	while (method < end && !json_is_string(name, method->name))
		method++;
	if (method == end)
		wire_error("a request for an unknown method");
	if (common)
		keys[n++] = common;
	for (i = 0; i < WIRE_MAX_FIELDS && method->fields[i]; i++)
		keys[n++] = method->fields[i];
	wire_expect_keys(request, keys);
	value = common ? json_get(request, common) : NULL;
	if (value)
		wire_server.take_common(value);
	method->serve(id, request);
}

struct json_value *wire_hello(const char *const *keys)
{
	struct json_value *message = receive();
	const struct json_value *protocol;

	if (!json_is_string(wire_field(message, "type"), "hello"))
		wire_error("a first message that is not hello");
	wire_expect_keys(message, keys);
	protocol = wire_field(message, "protocol");
	if (protocol->type != JSON_INT || protocol->integer.negative ||
	    protocol->integer.magnitude != WIRE_PROTOCOL)
		wire_error("a harness that does not speak protocol 1");
	if (wire_field(message, "harness")->type != JSON_STRING)
		wire_error("a harness field that is not a string");
	return message;
}

void wire_begin_hello(struct json_writer *w, const char *name)
{
	jw_raw(w, "{\"type\":\"hello\",\"protocol\":");
	jw_int(w, WIRE_PROTOCOL);
	jw_raw(w, ",\"name\":");
	jw_string(w, name);
	jw_raw(w, ",\"version\":");
	jw_string(w, WIRE_SERVER_VERSION);
}

void wire_serve(void)
{
	static const char *const bye_keys[] = { "type", NULL };

	for (;;) {
		struct json_value *message = receive();
		const struct json_value *type = wire_field(message, "type");

		if (json_is_string(type, "bye")) {
			struct json_writer w = { 0 };

			wire_expect_keys(message, bye_keys);
			jw_raw(&w, "{\"type\":\"bye\"}");
			wire_send(&w);
			json_free(message);
			free(line);
			line = NULL;
			return;
		}
		if (!json_is_string(type, "request"))
			wire_error("a message that is neither request nor bye");
		serve_request(message);
		json_free(message);
	}
}
