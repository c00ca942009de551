// SPDX-License-Identifier: MIT
/*
 * server.c - the C core as a candidate over the wire (docs/wire-protocol.md).
 *
 * One JSON message per line on standard input and output. The harness says
 * hello, sends one request at a time and waits for its reply; while a request
 * runs, the core's calls into mirrors and into the CPU page table go to the
 * harness as calls, each waiting for its answer, and requests the harness
 * sends meanwhile (observe, from inside a sync) are served as they come.
 *
 * Standard output carries protocol messages only; diagnostics go to standard
 * error. The server exits with 0 after bye or when its input closes, and
 * with 2, naming the line, when the harness breaks the protocol.
 */
#define _POSIX_C_SOURCE 200809L

#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "candidate.h"
#include "json.h"

#define WIRE_PROTOCOL	1
#define MAX_LINE	(1 << 20)

#ifndef HMM_CANDIDATE_VERSION
#define HMM_CANDIDATE_VERSION "unversioned"
#endif

static struct hmm_candidate *candidate;
static uint64_t next_call_id = 1;
static char *line;		/* the last line read, for diagnostics */

static _Noreturn void protocol_error(const char *problem)
{
	fprintf(stderr, "hmm-c-server: protocol error: %s\n", problem);
	if (line)
		fprintf(stderr, "hmm-c-server: in the line: %.300s\n", line);
	exit(2);
}

/* Write @w as one line and free it. */
static void send_message(struct json_writer *w)
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
		protocol_error("a line longer than 1 MiB");
	if (len && line[len - 1] == '\n')
		line[--len] = '\0';
	message = json_parse(line, (size_t)len, &error);
	if (!message)
		protocol_error(error);
	if (message->type != JSON_OBJECT)
		protocol_error("a message that is not an object");
	return message;
}

static void expect_keys(const struct json_value *message,
			const char *const *keys)
{
	if (!json_keys_within(message, keys))
		protocol_error("a field this message does not have");
}

static const struct json_value *field(const struct json_value *object,
				      const char *key)
{
	const struct json_value *value = json_get(object, key);

	if (!value)
		protocol_error("a field missing");
	return value;
}

static uint64_t field_u64(const struct json_value *object, const char *key)
{
	const struct json_value *value = field(object, key);

	if (value->type != JSON_INT || value->integer.negative)
		protocol_error("a field that should be an unsigned integer");
	return value->integer.magnitude;
}

/* A mirror or range number, or a vma index: small enough for an int. */
static int field_handle(const struct json_value *object, const char *key)
{
	uint64_t value = field_u64(object, key);

	if (value > INT_MAX)
		protocol_error("a handle too large for this server");
	return (int)value;
}

static bool field_bool(const struct json_value *object, const char *key)
{
	const struct json_value *value = field(object, key);

	if (value->type != JSON_BOOL)
		protocol_error("a field that should be true or false");
	return value->boolean;
}

/* An int result of a call: what fits in a C int. */
static int int_result(const struct json_value *value)
{
	uint64_t limit;

	if (value->type != JSON_INT)
		protocol_error("an answer that should be an integer");
	limit = value->integer.negative ? (uint64_t)INT_MAX + 1 : INT_MAX;
	if (value->integer.magnitude > limit)
		protocol_error("an answer beyond a C int");
	return value->integer.negative ?
	       (int)(-(int64_t)value->integer.magnitude) :
	       (int)value->integer.magnitude;
}

static void serve_request(const struct json_value *request);

/*
 * Wait for the answer to call @id, serving the requests that come first.
 * Returns the answer's result; @answer is the message that holds it.
 */
static const struct json_value *await_answer(uint64_t id,
					     struct json_value **answer)
{
	static const char *const keys[] = { "type", "id", "result", NULL };

	for (;;) {
		struct json_value *message = receive();
		const struct json_value *type = field(message, "type");

		if (json_is_string(type, "request")) {
			serve_request(message);
			json_free(message);
			continue;
		}
		if (!json_is_string(type, "answer"))
			protocol_error("a message that is no answer while a call waits");
		expect_keys(message, keys);
		if (field_u64(message, "id") != id)
			protocol_error("an answer to another call than the one waiting");
		*answer = message;
		return field(message, "result");
	}
}

static void begin_call(struct json_writer *w, const char *method)
{
	jw_raw(w, "{\"type\":\"call\",\"id\":");
	jw_u64(w, next_call_id);
	jw_raw(w, ",\"method\":");
	jw_string(w, method);
}

static int host_sync(void *host, int mirror, const struct hmm_update *update)
{
	struct json_writer w = { 0 };
	struct json_value *answer;
	uint64_t id = next_call_id;
	int result;

	begin_call(&w, "sync");
	jw_raw(&w, ",\"mirror\":");
	jw_int(&w, mirror);
	jw_raw(&w, ",\"update\":{\"start\":");
	jw_u64(&w, update->start);
	jw_raw(&w, ",\"end\":");
	jw_u64(&w, update->end);
	jw_raw(&w, ",\"event\":\"invalidate\",\"blockable\":");
	jw_bool(&w, update->blockable);
	jw_raw(&w, "}}");
	next_call_id++;
	send_message(&w);
	result = int_result(await_answer(id, &answer));
	json_free(answer);
	return result;
}

static void host_release(void *host, int mirror)
{
	struct json_writer w = { 0 };
	struct json_value *answer;
	uint64_t id = next_call_id;

	begin_call(&w, "release");
	jw_raw(&w, ",\"mirror\":");
	jw_int(&w, mirror);
	jw_raw(&w, "}");
	next_call_id++;
	send_message(&w);
	if (await_answer(id, &answer)->type != JSON_NULL)
		protocol_error("an answer to release that is not null");
	json_free(answer);
}

static void parse_pte(const struct json_value *entry, struct cpu_pte *pte)
{
	static const char *const kinds[] = {
		[CPU_PTE_NONE] = "none",
		[CPU_PTE_PRESENT] = "present",
		[CPU_PTE_DEVICE_PRIVATE] = "device-private",
		[CPU_PTE_SWAP] = "swap",
		[CPU_PTE_MIGRATION] = "migration",
		[CPU_PTE_POISON] = "poison",
	};
	static const char *const mapped_keys[] = { "kind", "pfn", "write", NULL };
	static const char *const other_keys[] = { "kind", NULL };
	const struct json_value *kind = field(entry, "kind");
	size_t i;

	for (i = 0; i < sizeof(kinds) / sizeof(kinds[0]); i++)
		if (json_is_string(kind, kinds[i]))
			break;
	if (i == sizeof(kinds) / sizeof(kinds[0]))
		protocol_error("a CPU entry of an unknown kind");
	pte->kind = (enum cpu_pte_kind)i;
	if (pte->kind == CPU_PTE_PRESENT ||
	    pte->kind == CPU_PTE_DEVICE_PRIVATE) {
		expect_keys(entry, mapped_keys);
		pte->pfn = field_u64(entry, "pfn");
		pte->write = field_bool(entry, "write");
	} else {
		expect_keys(entry, other_keys);
		pte->pfn = 0;
		pte->write = false;
	}
}

/* One call for the span the walk asks for (up to 64 pages: HMM_WALK_BATCH). */
static int host_read_ptes(void *host, unsigned long start, unsigned long end,
			  struct cpu_pte *ptes)
{
	struct json_writer w = { 0 };
	const struct json_value *entries;
	struct json_value *answer;
	uint64_t id = next_call_id;
	size_t i;

	begin_call(&w, "read_ptes");
	jw_raw(&w, ",\"start\":");
	jw_u64(&w, start);
	jw_raw(&w, ",\"end\":");
	jw_u64(&w, end);
	jw_raw(&w, "}");
	next_call_id++;
	send_message(&w);
	entries = await_answer(id, &answer);
	if (entries->type != JSON_ARRAY ||
	    entries->array.count != (end - start) >> PAGE_SHIFT)
		protocol_error("an answer to read_ptes without one entry a page");
	for (i = 0; i < entries->array.count; i++) {
		if (entries->array.items[i].type != JSON_OBJECT)
			protocol_error("a CPU entry that is not an object");
		parse_pte(&entries->array.items[i], &ptes[i]);
	}
	json_free(answer);
	return 0;
}

static const struct hmm_candidate_host host = {
	.sync = host_sync,
	.release = host_release,
	.read_ptes = host_read_ptes,
};

static void begin_reply(struct json_writer *w, uint64_t id)
{
	jw_raw(w, "{\"type\":\"reply\",\"id\":");
	jw_u64(w, id);
}

/*
 * Reply to request @id: with the result the writer @result holds, or, for a
 * refusal @ret, with the error the protocol gives it (REG-5's livelock is a
 * would-hang, every other refusal a rejection).
 */
static void reply(uint64_t id, int ret, struct json_writer *result)
{
	struct json_writer w = { 0 };

	begin_reply(&w, id);
	if (ret <= -HMM_E_FIRST) {
		jw_raw(&w, ",\"error\":{\"kind\":");
		jw_string(&w, ret == -HMM_E_LIVELOCK ? "would-hang" : "rejected");
		jw_raw(&w, ",\"message\":");
		jw_string(&w, hmm_candidate_strerror(ret));
		jw_raw(&w, "}}");
	} else {
		jw_raw(&w, ",\"result\":");
		jw_raw(&w, result->buf);
		jw_raw(&w, "}");
	}
	free(result->buf);
	send_message(&w);
}

static void reply_int(uint64_t id, int ret)
{
	struct json_writer result = { 0 };

	jw_int(&result, ret);
	reply(id, ret, &result);
}

static void reply_null(uint64_t id, int ret)
{
	struct json_writer result = { 0 };

	jw_raw(&result, "null");
	reply(id, ret, &result);
}

static void serve_begin(uint64_t id, const struct json_value *request)
{
	static const char *const keys[] = {
		"start", "end", "read", "write", "special", NULL
	};
	const struct json_value *vmas = field(request, "vmas");
	struct hmm_vma_spec *specs;
	size_t i;

	if (vmas->type != JSON_ARRAY)
		protocol_error("vmas that are not a list");
	specs = xcalloc(vmas->array.count, sizeof(*specs));
	for (i = 0; i < vmas->array.count; i++) {
		const struct json_value *vma = &vmas->array.items[i];

		if (vma->type != JSON_OBJECT)
			protocol_error("a vma that is not an object");
		expect_keys(vma, keys);
		specs[i].start = field_u64(vma, "start");
		specs[i].end = field_u64(vma, "end");
		specs[i].read = field_bool(vma, "read");
		specs[i].write = field_bool(vma, "write");
		specs[i].special = field_bool(vma, "special");
	}
	reply_null(id, hmm_candidate_begin(candidate, specs,
					   vmas->array.count));
	free(specs);
}

static void field_triple(const struct json_value *encoding, const char *key,
			 uint64_t triple[3])
{
	const struct json_value *array = field(encoding, key);
	size_t i;

	if (array->type != JSON_ARRAY || array->array.count != 3)
		protocol_error("an encoding array without three entries");
	for (i = 0; i < 3; i++) {
		const struct json_value *item = &array->array.items[i];

		if (item->type != JSON_INT || item->integer.negative)
			protocol_error("an encoding entry that is not a u64");
		triple[i] = item->integer.magnitude;
	}
}

static void serve_snapshot(uint64_t id, const struct json_value *request)
{
	static const char *const keys[] = {
		"flags", "values", "pfn_shift", NULL
	};
	const struct json_value *encoding = field(request, "encoding");
	struct hmm_encoding enc;
	uint64_t shift;

	if (encoding->type != JSON_OBJECT)
		protocol_error("an encoding that is not an object");
	expect_keys(encoding, keys);
	field_triple(encoding, "flags", enc.flags);
	field_triple(encoding, "values", enc.values);
	shift = field_u64(encoding, "pfn_shift");
	/* 64 stands for any shift too large, which the candidate refuses. */
	enc.pfn_shift = shift < 64 ? (unsigned int)shift : 64;
	reply_int(id, hmm_candidate_snapshot(candidate,
					     field_handle(request, "range"),
					     (size_t)field_u64(request, "vma"),
					     field_u64(request, "start"),
					     field_u64(request, "end"), &enc));
}

static void serve_observe(uint64_t id, const struct json_value *request)
{
	struct json_writer result = { 0 };
	struct hmm_range_view view;
	size_t i;
	int ret = hmm_candidate_observe(candidate,
					field_handle(request, "range"), &view);

	if (!ret) {
		jw_raw(&result, "{\"registered\":");
		jw_bool(&result, view.registered);
		jw_raw(&result, ",\"valid\":");
		jw_bool(&result, view.valid);
		jw_raw(&result, ",\"entries\":[");
		for (i = 0; i < view.npages; i++) {
			if (i)
				jw_raw(&result, ",");
			jw_u64(&result, view.entries[i]);
		}
		jw_raw(&result, "]}");
	}
	reply(id, ret, &result);
}

static void serve_range_done(uint64_t id, const struct json_value *request)
{
	struct json_writer result = { 0 };
	int ret = hmm_candidate_range_done(candidate,
					   field_handle(request, "range"));

	jw_bool(&result, ret > 0);
	reply(id, ret, &result);
}

static void serve_register(uint64_t id, const struct json_value *request)
{
	reply_int(id, hmm_candidate_register(candidate,
					     field_handle(request, "mirror"),
					     field_bool(request, "with_ops")));
}

static void serve_unregister(uint64_t id, const struct json_value *request)
{
	reply_null(id, hmm_candidate_unregister(candidate,
						field_handle(request,
							     "mirror")));
}

static void serve_invalidate_start(uint64_t id,
				   const struct json_value *request)
{
	reply_int(id, hmm_candidate_invalidate_start(candidate,
			field_u64(request, "start"), field_u64(request, "end"),
			field_bool(request, "blockable")));
}

static void serve_invalidate_end(uint64_t id,
				 const struct json_value *request)
{
	reply_null(id, hmm_candidate_invalidate_end(candidate,
			field_u64(request, "start"),
			field_u64(request, "end")));
}

static void serve_release(uint64_t id, const struct json_value *request)
{
	reply_null(id, hmm_candidate_release(candidate));
}

/* Each method, the fields of its request, and who serves it. */
static const struct method {
	const char *name;
	const char *const fields[6];
	void (*serve)(uint64_t id, const struct json_value *request);
} methods[] = {
	{ "begin", { "vmas" }, serve_begin },
	{ "register", { "mirror", "with_ops" }, serve_register },
	{ "unregister", { "mirror" }, serve_unregister },
	{ "snapshot", { "range", "vma", "start", "end", "encoding" },
	  serve_snapshot },
	{ "observe", { "range" }, serve_observe },
	{ "range_done", { "range" }, serve_range_done },
	{ "invalidate_start", { "start", "end", "blockable" },
	  serve_invalidate_start },
	{ "invalidate_end", { "start", "end" }, serve_invalidate_end },
	{ "release", { NULL }, serve_release },
};

static void serve_request(const struct json_value *request)
{
	const struct json_value *name = field(request, "method");
	const struct method *method;
	const char *keys[10] = { "type", "id", "method" };
	size_t i, n;
	uint64_t id = field_u64(request, "id");

	if (!id)
		protocol_error("a request id of 0");
	for (method = methods; method < methods + sizeof(methods) /
				   sizeof(methods[0]); method++)
		if (json_is_string(name, method->name))
			break;
	if (method == methods + sizeof(methods) / sizeof(methods[0]))
		protocol_error("a request for an unknown method");
	for (n = 3, i = 0; method->fields[i]; i++)
		keys[n++] = method->fields[i];
	expect_keys(request, keys);
	method->serve(id, request);
}

static void hello(void)
{
	static const char *const keys[] = {
		"type", "protocol", "harness", NULL
	};
	struct json_value *message = receive();
	const struct json_value *protocol;
	struct json_writer w = { 0 };

	if (!json_is_string(field(message, "type"), "hello"))
		protocol_error("a first message that is not hello");
	expect_keys(message, keys);
	protocol = field(message, "protocol");
	if (protocol->type != JSON_INT || protocol->integer.negative ||
	    protocol->integer.magnitude != WIRE_PROTOCOL)
		protocol_error("a harness that does not speak protocol 1");
	if (field(message, "harness")->type != JSON_STRING)
		protocol_error("a harness field that is not a string");
	json_free(message);

	jw_raw(&w, "{\"type\":\"hello\",\"protocol\":");
	jw_int(&w, WIRE_PROTOCOL);
	jw_raw(&w, ",\"name\":");
	jw_string(&w, hmm_candidate_name());
	jw_raw(&w, ",\"version\":");
	jw_string(&w, HMM_CANDIDATE_VERSION);
	jw_raw(&w, ",\"capabilities\":[\"release\",\"observe-in-callback\","
		   "\"strict\"]}");
	send_message(&w);
}

int main(void)
{
	static const char *const bye_keys[] = { "type", NULL };

	hello();
	candidate = hmm_candidate_new(&host, NULL);
	for (;;) {
		struct json_value *message = receive();
		const struct json_value *type = field(message, "type");

		if (json_is_string(type, "bye")) {
			struct json_writer w = { 0 };

			expect_keys(message, bye_keys);
			jw_raw(&w, "{\"type\":\"bye\"}");
			send_message(&w);
			json_free(message);
			hmm_candidate_free(candidate);
			free(line);
			return EXIT_SUCCESS;
		}
		if (!json_is_string(type, "request"))
			protocol_error("a message that is neither request nor bye");
		serve_request(message);
		json_free(message);
	}
}
