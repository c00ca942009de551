// SPDX-License-Identifier: MIT
/*
 * server.c - the C driver as a driver candidate over the wire
 * (docs/wire-protocol.md, "The driver side").
 *
 * One JSON message per line on standard input and output (the C core's
 * wire.h frames them). The harness says hello, sends one request at a time
 * (a method of the driver protocol) and waits for its reply; while a request
 * runs, the driver's lock calls and HMM calls go to the harness as calls,
 * each waiting for its answer.
 *
 * An answer may carry an error instead of a result: the harness could not
 * do the call (a blocking lock was held, a misuse). Then the host operation
 * fails, the driver unwinds to its entry point (shims.h) and makes no more
 * calls, and the request is answered with an error of the same kind and
 * message, as the protocol asks.
 *
 * Standard output carries protocol messages only; diagnostics go to standard
 * error. The server exits with 0 after bye or when its input closes, and
 * with 2, naming the line, when the harness breaks the protocol.
 */
#include <stdlib.h>
#include <string.h>

#include "driver.h"
#include "wire.h"

static struct dmirror *driver;

/* The error of the last answer that carried one, echoed in the reply. */
static struct {
	char *kind;
	char *message;
} failed;

/* A fault or range number: small enough for an int. */
static int field_handle(const struct json_value *object, const char *key)
{
	return wire_field_small(object, key,
				"a fault number too large for this server");
}

static char *copy_string(const struct json_value *value)
{
	char *copy;

	if (value->type != JSON_STRING)
		wire_error("an error whose kind or message is not a string");
	copy = xcalloc(value->string.len + 1, 1);
	memcpy(copy, value->string.chars, value->string.len);
	return copy;
}

/* Keep the error an answer carried, for the reply to the request. */
static void keep_error(const struct json_value *error)
{
	static const char *const keys[] = { "kind", "message", NULL };

	if (error->type != JSON_OBJECT)
		wire_error("an error that is not an object");
	wire_expect_keys(error, keys);
	free(failed.kind);
	free(failed.message);
	failed.kind = copy_string(wire_field(error, "kind"));
	failed.message = copy_string(wire_field(error, "message"));
}

/*
 * Make the call @id that @w holds. Its result, with @answer the message that
 * holds it; or NULL if the answer carried an error, which is kept for the
 * reply.
 */
static const struct json_value *call(struct json_writer *w, uint64_t id,
				     struct json_value **answer)
{
	static const char *const keys[] = { "type", "id", "result", "error",
					    NULL };
	struct json_value *message = wire_call(w, id, keys);
	const struct json_value *error = json_get(message, "error");

	*answer = message;
	if (error) {
		if (json_get(message, "result"))
			wire_error("an answer with both a result and an error");
		keep_error(error);
		return NULL;
	}
	return wire_field(message, "result");
}

static int host_lock(void *host, const char *primitive, const char *lock,
		     const char *owner)
{
	struct json_writer w = { 0 };
	const struct json_value *result;
	struct json_value *answer;
	uint64_t id = wire_begin_call(&w, "lock");
	int ret = 0;

	jw_raw(&w, ",\"primitive\":");
	jw_string(&w, primitive);
	jw_raw(&w, ",\"lock\":");
	jw_string(&w, lock);
	jw_raw(&w, ",\"owner\":");
	jw_string(&w, owner);
	result = call(&w, id, &answer);
	if (!result)
		ret = DRV_HOST_FAILED;
	else if (strstr(primitive, "trylock")) {
		if (result->type != JSON_BOOL)
			wire_error("an answer to a try-lock that is not a bool");
		ret = result->boolean;
	} else if (result->type != JSON_NULL) {
		wire_error("an answer to a lock call that is not null");
	}
	json_free(answer);
	return ret;
}

static void parse_pfns(const struct json_value *result, uint64_t *pfns,
		       size_t npages, int *ret)
{
	static const char *const keys[] = { "ret", "pfns", NULL };
	const struct json_value *entries;

	if (result->type != JSON_OBJECT)
		wire_error("an answer to get_pfns that is not an object");
	wire_expect_keys(result, keys);
	*ret = wire_int(wire_field(result, "ret"));
	entries = wire_field(result, "pfns");
	if (entries->type != JSON_ARRAY)
		wire_error("pfns that are not a list");
	if (*ret)
		return;		/* nothing was snapshotted */
	if (entries->array.count != npages)
		wire_error("a snapshot without one entry a page");
	wire_u64s(entries, pfns, "a snapshot entry that is not a u64");
}

static int host_get_pfns(void *host, int range, unsigned long start,
			 unsigned long end, uint64_t *pfns, size_t npages,
			 int *ret)
{
	struct json_writer w = { 0 };
	const struct json_value *result;
	struct json_value *answer;
	uint64_t id = wire_begin_call(&w, "get_pfns");

	jw_raw(&w, ",\"range\":");
	jw_int(&w, range);
	jw_raw(&w, ",\"start\":");
	jw_u64(&w, start);
	jw_raw(&w, ",\"end\":");
	jw_u64(&w, end);
	result = call(&w, id, &answer);
	if (result)
		parse_pfns(result, pfns, npages, ret);
	json_free(answer);
	return result ? 0 : DRV_HOST_FAILED;
}

static int host_range_done(void *host, int range)
{
	struct json_writer w = { 0 };
	const struct json_value *result;
	struct json_value *answer;
	uint64_t id = wire_begin_call(&w, "range_done");
	int ret = DRV_HOST_FAILED;

	jw_raw(&w, ",\"range\":");
	jw_int(&w, range);
	result = call(&w, id, &answer);
	if (result) {
		if (result->type != JSON_BOOL)
			wire_error("an answer to range_done that is not a bool");
		ret = result->boolean;
	}
	json_free(answer);
	return ret;
}

static const struct drv_host_ops host = {
	.lock = host_lock,
	.get_pfns = host_get_pfns,
	.range_done = host_range_done,
};

/*
 * A refusal's error: the one the harness's answer carried if the request
 * was abandoned, else a crash naming the refusal.
 */
static const char *refusal(int ret, const char **message)
{
	if (ret == -DRV_E_ABANDONED) {
		*message = failed.message;
		return failed.kind;
	}
	*message = dmirror_strerror(ret);
	return "crash";
}

static void serve_begin(uint64_t id, const struct json_value *request)
{
	const struct json_value *vmas = wire_field(request, "vmas");
	const struct json_value *encoding = wire_field(request, "encoding");
	struct dmirror_encoding enc;
	struct dmirror_vma *specs;
	struct wire_vma vma;
	uint64_t shift;
	size_t i;

	if (vmas->type != JSON_ARRAY)
		wire_error("vmas that are not a list");
	shift = wire_encoding(encoding, enc.flags, enc.values);
	if (shift >= 64)
		wire_error("a pfn_shift of 64 or more");
	enc.pfn_shift = (unsigned int)shift;
	specs = xcalloc(vmas->array.count, sizeof(*specs));
	for (i = 0; i < vmas->array.count; i++) {
		wire_vma(&vmas->array.items[i], &vma);
		specs[i].start = vma.start;
		specs[i].end = vma.end;
	}
	wire_reply_null(id, dmirror_begin(driver, specs, vmas->array.count,
					  &enc));
	free(specs);
}

static void serve_sync(uint64_t id, const struct json_value *request)
{
	static const char *const keys[] = {
		"start", "end", "event", "blockable", NULL
	};
	const struct json_value *update = wire_field(request, "update");
	struct json_writer result = { 0 };
	int answer, ret;

	if (update->type != JSON_OBJECT)
		wire_error("an update that is not an object");
	wire_expect_keys(update, keys);
	if (!json_is_string(wire_field(update, "event"), "invalidate"))
		wire_error("an update whose event is not invalidate");
	ret = dmirror_sync(driver, wire_field_u64(update, "start"),
			   wire_field_u64(update, "end"),
			   wire_field_bool(update, "blockable"), &answer);
	jw_int(&result, answer);
	wire_reply(id, ret, &result);
}

static void serve_release(uint64_t id, const struct json_value *request)
{
	wire_reply_null(id, dmirror_release(driver));
}

static void serve_start_fault(uint64_t id, const struct json_value *request)
{
	wire_reply_null(id, dmirror_start_fault(driver,
			field_handle(request, "fault"),
			wire_field_u64(request, "start"),
			wire_field_u64(request, "end")));
}

static const char *const step_names[] = {
	[DMIRROR_SNAPSHOT] = "snapshot",
	[DMIRROR_LOCK] = "lock",
	[DMIRROR_CHECK] = "check",
	[DMIRROR_UNLOCK] = "unlock",
};

static void serve_step_fault(uint64_t id, const struct json_value *request)
{
	struct json_writer result = { 0 };
	enum dmirror_step taken;
	int ret = dmirror_step_fault(driver, field_handle(request, "fault"),
				     &taken);

	if (!ret)
		jw_string(&result, step_names[taken]);
	wire_reply(id, ret, &result);
}

static void serve_fault_view(uint64_t id, const struct json_value *request)
{
	struct json_writer result = { 0 };
	struct dmirror_fault_view view;
	int ret = dmirror_fault_view(driver, field_handle(request, "fault"),
				     &view);

	if (!ret && view.next == DMIRROR_DONE) {
		jw_raw(&result, "{\"next_step\":null,\"result\":");
		jw_int(&result, view.result);
		jw_raw(&result, "}");
	} else if (!ret) {
		jw_raw(&result, "{\"next_step\":");
		jw_string(&result, step_names[view.next]);
		jw_raw(&result, ",\"result\":null}");
	}
	wire_reply(id, ret, &result);
}

static void serve_fault_would_block(uint64_t id,
				    const struct json_value *request)
{
	wire_reply_bool(id, dmirror_fault_would_block(driver,
				field_handle(request, "fault")));
}

static void serve_invalidation_would_block(uint64_t id,
					   const struct json_value *request)
{
	wire_reply_bool(id, dmirror_invalidation_would_block(driver,
				wire_field_bool(request, "blockable")));
}

static void serve_release_would_block(uint64_t id,
				      const struct json_value *request)
{
	wire_reply_bool(id, dmirror_release_would_block(driver));
}

static void serve_device_page_table(uint64_t id,
				    const struct json_value *request)
{
	struct json_writer result = { 0 };
	const struct dmirror_entry *entries;
	size_t i, n = dmirror_device_page_table(driver, &entries);

	jw_raw(&result, "[");
	for (i = 0; i < n; i++) {
		jw_raw(&result, i ? ",{\"addr\":" : "{\"addr\":");
		jw_u64(&result, entries[i].addr);
		jw_raw(&result, ",\"pfn\":");
		jw_u64(&result, entries[i].pfn);
		jw_raw(&result, ",\"write\":");
		jw_bool(&result, entries[i].write);
		jw_raw(&result, "}");
	}
	jw_raw(&result, "]");
	wire_reply(id, 0, &result);
}

static const struct wire_method methods[] = {
	{ "begin", { "vmas", "encoding" }, serve_begin },
	{ "sync", { "update" }, serve_sync },
	{ "release", { NULL }, serve_release },
	{ "start_fault", { "fault", "start", "end" }, serve_start_fault },
	{ "step_fault", { "fault" }, serve_step_fault },
	{ "fault_view", { "fault" }, serve_fault_view },
	{ "fault_would_block", { "fault" }, serve_fault_would_block },
	{ "invalidation_would_block", { "blockable" },
	  serve_invalidation_would_block },
	{ "release_would_block", { NULL }, serve_release_would_block },
	{ "device_page_table", { NULL }, serve_device_page_table },
};

/*
 * What HMM wrote into the driver's ranges since it last saw them, a
 * request's "ranges": the whole new content of each range that changed.
 * Copy it into the driver's arrays, as HMM writes them in the kernel, before
 * the request is handled.
 */
static void write_ranges(const struct json_value *ranges)
{
	static const char *const keys[] = { "range", "pfns", NULL };
	size_t i;

	if (ranges->type != JSON_ARRAY)
		wire_error("ranges that are not a list");
	for (i = 0; i < ranges->array.count; i++) {
		const struct json_value *range = &ranges->array.items[i];
		const struct json_value *entries;
		uint64_t *pfns;
		size_t npages;

		if (range->type != JSON_OBJECT)
			wire_error("a range that is not an object");
		wire_expect_keys(range, keys);
		pfns = dmirror_range_pfns(driver, field_handle(range, "range"),
					  &npages);
		if (!pfns)
			wire_error("entries for a range the driver does not have");
		entries = wire_field(range, "pfns");
		if (entries->type != JSON_ARRAY || entries->array.count != npages)
			wire_error("a range's entries without one entry a page");
		wire_u64s(entries, pfns, "a range entry that is not a u64");
	}
}

const struct wire_server wire_server = {
	.name = "dmirror-c-server",
	.methods = methods,
	.nr_methods = sizeof(methods) / sizeof(methods[0]),
	.common_field = "ranges",
	.take_common = write_ranges,
	.first_refusal = DRV_E_FIRST,
	.refusal = refusal,
};

static void hello(void)
{
	static const char *const keys[] = {
		"type", "protocol", "side", "harness", NULL
	};
	struct json_value *message = wire_hello(keys);
	const struct json_value *side = json_get(message, "side");
	struct json_writer w = { 0 };

	if (side && !json_is_string(side, "driver"))
		wire_error("a harness that wants another side than driver");
	json_free(message);

	wire_begin_hello(&w, dmirror_build_name());
	jw_raw(&w, ",\"lock\":");
	jw_string(&w, dmirror_lock_name());
	jw_raw(&w, ",\"capabilities\":[\"release\"]}");
	wire_send(&w);
}

int main(void)
{
	hello();
	driver = dmirror_new(&host, NULL);
	wire_serve();
	dmirror_free(driver);
	free(failed.kind);
	free(failed.message);
	return EXIT_SUCCESS;
}
