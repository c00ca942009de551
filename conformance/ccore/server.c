// SPDX-License-Identifier: MIT
/*
 * server.c - the C core as a candidate over the wire (docs/wire-protocol.md).
 *
 * One JSON message per line on standard input and output (wire.h frames
 * them). The harness says hello, sends one request at a time and waits for
 * its reply; while a request runs, the core's calls into mirrors and into
 * the CPU page table go to the harness as calls, each waiting for its
 * answer, and requests the harness sends meanwhile (observe, from inside a
 * sync) are served as they come. It declares the fault capability: a fault
 * request runs hmm_vma_fault(), whose calls into the CPU's fault handling
 * (handle_mm_fault, migration_entry_wait) go to the harness the same way.
 *
 * It speaks protocol 1.1 and offers observe-ahead: a request that carries
 * "observe" gets the views of the ranges it names with its reply ("after")
 * and with each sync call it makes ("in_sync"), so that the harness needs no
 * observe request of its own for them. A harness that does not ask is served
 * as in 1.0.
 *
 * Standard output carries protocol messages only; diagnostics go to standard
 * error. The server exits with 0 after bye or when its input closes, and
 * with 2, naming the line, when the harness breaks the protocol.
 */
#include <limits.h>
#include <stdlib.h>

#include "candidate.h"
#include "wire.h"

static struct hmm_candidate *candidate;

/*
 * What the request in progress asked to be seen (observe-ahead): lists of
 * range numbers in the request itself, which outlives its serving; NULL when
 * it asked nothing.
 */
struct observe_ahead {
	const struct json_value *after;
	const struct json_value *in_sync;
};

static struct observe_ahead ahead;

/* A mirror or range number, or a vma index: small enough for an int. */
static int field_handle(const struct json_value *object, const char *key)
{
	return wire_field_small(object, key,
				"a handle too large for this server");
}

/*
 * Make the call @id that @w holds, serving the requests that come before its
 * answer. Returns the answer's result; @answer is the message that holds it.
 */
static const struct json_value *call(struct json_writer *w, uint64_t id,
				     struct json_value **answer)
{
	static const char *const keys[] = { "type", "id", "result", NULL };
	struct observe_ahead outer = ahead;

	/* A request served while it waits asks for views of its own. */
	ahead.after = ahead.in_sync = NULL;
	*answer = wire_call(w, id, keys);
	ahead = outer;
	return wire_field(*answer, "result");
}

/* A range's view, the members of its JSON object: registered, valid, entries. */
static void write_view(struct json_writer *w,
		       const struct hmm_range_view *view)
{
	size_t i;

	jw_raw(w, "\"registered\":");
	jw_bool(w, view->registered);
	jw_raw(w, ",\"valid\":");
	jw_bool(w, view->valid);
	jw_raw(w, ",\"entries\":[");
	for (i = 0; i < view->npages; i++) {
		if (i)
			jw_raw(w, ",");
		jw_u64(w, view->entries[i]);
	}
	jw_raw(w, "]");
}

/* The "observed" field: what observe says now of each range of @ranges. */
static void write_observed(struct json_writer *w,
			   const struct json_value *ranges)
{
	size_t i;

	jw_raw(w, ",\"observed\":[");
	for (i = 0; i < ranges->array.count; i++) {
		int range = (int)ranges->array.items[i].integer.magnitude;
		struct hmm_range_view view;
		int ret = hmm_candidate_observe(candidate, range, &view);

		jw_raw(w, i ? ",{\"range\":" : "{\"range\":");
		jw_int(w, range);
		if (ret) {
			jw_raw(w, ",\"error\":{\"kind\":\"rejected\",\"message\":");
			jw_string(w, hmm_candidate_strerror(ret));
			jw_raw(w, "}}");
			continue;
		}
		jw_raw(w, ",");
		write_view(w, &view);
		jw_raw(w, "}");
	}
	jw_raw(w, "]");
}

static const struct json_value *range_list(const struct json_value *observe,
					   const char *key)
{
	const struct json_value *list = wire_field(observe, key);
	size_t i;

	if (list->type != JSON_ARRAY)
		wire_error("an observe list that is not a list");
	for (i = 0; i < list->array.count; i++) {
		const struct json_value *item = &list->array.items[i];

		if (item->type != JSON_INT || item->integer.negative ||
		    item->integer.magnitude > INT_MAX)
			wire_error("an observe list entry that is not a range number");
	}
	return list;
}

/* A request's "observe": what to send with its reply and its sync calls. */
static void take_observe(const struct json_value *observe)
{
	static const char *const keys[] = { "after", "in_sync", NULL };

	if (observe->type != JSON_OBJECT)
		wire_error("an observe field that is not an object");
	wire_expect_keys(observe, keys);
	ahead.after = range_list(observe, "after");
	ahead.in_sync = range_list(observe, "in_sync");
}

/* The views a reply carries; the request is answered, so it asks no more. */
static void reply_observed(struct json_writer *w)
{
	if (ahead.after && ahead.after->array.count)
		write_observed(w, ahead.after);
	ahead.after = ahead.in_sync = NULL;
}

static int host_sync(void *host, int mirror, const struct hmm_update *update)
{
	struct json_writer w = { 0 };
	struct json_value *answer;
	uint64_t id = wire_begin_call(&w, "sync");
	int result;

	jw_raw(&w, ",\"mirror\":");
	jw_int(&w, mirror);
	jw_raw(&w, ",\"update\":{\"start\":");
	jw_u64(&w, update->start);
	jw_raw(&w, ",\"end\":");
	jw_u64(&w, update->end);
	jw_raw(&w, ",\"event\":\"invalidate\",\"blockable\":");
	jw_bool(&w, update->blockable);
	jw_raw(&w, "}");		/* the update; wire_call() ends the call */
	if (ahead.in_sync && ahead.in_sync->array.count)
		write_observed(&w, ahead.in_sync);
	result = wire_int(call(&w, id, &answer));
	json_free(answer);
	return result;
}

static void host_release(void *host, int mirror)
{
	struct json_writer w = { 0 };
	struct json_value *answer;
	uint64_t id = wire_begin_call(&w, "release");

	jw_raw(&w, ",\"mirror\":");
	jw_int(&w, mirror);
	if (call(&w, id, &answer)->type != JSON_NULL)
		wire_error("an answer to release that is not null");
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
	const struct json_value *kind = wire_field(entry, "kind");
	size_t i;

	for (i = 0; i < sizeof(kinds) / sizeof(kinds[0]); i++)
		if (json_is_string(kind, kinds[i]))
			break;
	if (i == sizeof(kinds) / sizeof(kinds[0]))
		wire_error("a CPU entry of an unknown kind");
	pte->kind = (enum cpu_pte_kind)i;
	if (pte->kind == CPU_PTE_PRESENT ||
	    pte->kind == CPU_PTE_DEVICE_PRIVATE) {
		wire_expect_keys(entry, mapped_keys);
		pte->pfn = wire_field_u64(entry, "pfn");
		pte->write = wire_field_bool(entry, "write");
	} else {
		wire_expect_keys(entry, other_keys);
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
	uint64_t id = wire_begin_call(&w, "read_ptes");
	size_t i;

	jw_raw(&w, ",\"start\":");
	jw_u64(&w, start);
	jw_raw(&w, ",\"end\":");
	jw_u64(&w, end);
	entries = call(&w, id, &answer);
	if (entries->type != JSON_ARRAY ||
	    entries->array.count != (end - start) >> PAGE_SHIFT)
		wire_error("an answer to read_ptes without one entry a page");
	for (i = 0; i < entries->array.count; i++) {
		if (entries->array.items[i].type != JSON_OBJECT)
			wire_error("a CPU entry that is not an object");
		parse_pte(&entries->array.items[i], &ptes[i]);
	}
	json_free(answer);
	return 0;
}

static int host_handle_mm_fault(void *host, unsigned long addr, bool write,
				bool allow_retry, bool nowait)
{
	struct json_writer w = { 0 };
	struct json_value *answer;
	uint64_t id = wire_begin_call(&w, "handle_mm_fault");
	int result;

	jw_raw(&w, ",\"addr\":");
	jw_u64(&w, addr);
	jw_raw(&w, ",\"write\":");
	jw_bool(&w, write);
	jw_raw(&w, ",\"allow_retry\":");
	jw_bool(&w, allow_retry);
	jw_raw(&w, ",\"nowait\":");
	jw_bool(&w, nowait);
	result = wire_int(call(&w, id, &answer));
	json_free(answer);
	return result;
}

static void host_migration_entry_wait(void *host, unsigned long addr)
{
	struct json_writer w = { 0 };
	struct json_value *answer;
	uint64_t id = wire_begin_call(&w, "migration_entry_wait");

	jw_raw(&w, ",\"addr\":");
	jw_u64(&w, addr);
	if (call(&w, id, &answer)->type != JSON_NULL)
		wire_error("an answer to migration_entry_wait that is not null");
	json_free(answer);
}

static const struct hmm_candidate_host host = {
	.sync = host_sync,
	.release = host_release,
	.read_ptes = host_read_ptes,
	.handle_mm_fault = host_handle_mm_fault,
	.migration_entry_wait = host_migration_entry_wait,
};

/* A refusal's error: REG-5's livelock would hang, every other is rejected. */
static const char *refusal(int ret, const char **message)
{
	*message = hmm_candidate_strerror(ret);
	return ret == -HMM_E_LIVELOCK ? "would-hang" : "rejected";
}

static void serve_begin(uint64_t id, const struct json_value *request)
{
	const struct json_value *vmas = wire_field(request, "vmas");
	struct hmm_vma_spec *specs;
	struct wire_vma vma;
	size_t i;

	if (vmas->type != JSON_ARRAY)
		wire_error("vmas that are not a list");
	specs = xcalloc(vmas->array.count, sizeof(*specs));
	for (i = 0; i < vmas->array.count; i++) {
		wire_vma(&vmas->array.items[i], &vma);
		specs[i].start = vma.start;
		specs[i].end = vma.end;
		specs[i].read = vma.read;
		specs[i].write = vma.write;
		specs[i].special = vma.special;
	}
	wire_reply_null(id, hmm_candidate_begin(candidate, specs,
						vmas->array.count));
	free(specs);
}

static void serve_snapshot(uint64_t id, const struct json_value *request)
{
	const struct json_value *encoding = wire_field(request, "encoding");
	struct hmm_encoding enc;
	uint64_t shift = wire_encoding(encoding, enc.flags, enc.values);

	/* 64 stands for any shift too large, which the candidate refuses. */
	enc.pfn_shift = shift < 64 ? (unsigned int)shift : 64;
	wire_reply_int(id, hmm_candidate_snapshot(candidate,
			field_handle(request, "range"),
			(size_t)wire_field_u64(request, "vma"),
			wire_field_u64(request, "start"),
			wire_field_u64(request, "end"), &enc));
}

static void serve_fault(uint64_t id, const struct json_value *request)
{
	const struct json_value *encoding = wire_field(request, "encoding");
	const struct json_value *requests = wire_field(request, "pfns");
	struct hmm_encoding enc;
	uint64_t shift = wire_encoding(encoding, enc.flags, enc.values);
	uint64_t *pfns;

	enc.pfn_shift = shift < 64 ? (unsigned int)shift : 64;
	if (requests->type != JSON_ARRAY)
		wire_error("pfns that are not a list");
	pfns = xcalloc(requests->array.count, sizeof(*pfns));
	wire_u64s(requests, pfns, "a pfns entry that is not a u64");
	wire_reply_int(id, hmm_candidate_fault(candidate,
			field_handle(request, "range"),
			(size_t)wire_field_u64(request, "vma"),
			wire_field_u64(request, "start"),
			wire_field_u64(request, "end"), &enc,
			pfns, requests->array.count,
			wire_field_bool(request, "block")));
	free(pfns);
}

static void serve_observe(uint64_t id, const struct json_value *request)
{
	struct json_writer result = { 0 };
	struct hmm_range_view view;
	int ret = hmm_candidate_observe(candidate,
					field_handle(request, "range"), &view);

	if (!ret) {
		jw_raw(&result, "{");
		write_view(&result, &view);
		jw_raw(&result, "}");
	}
	wire_reply(id, ret, &result);
}

static void serve_range_done(uint64_t id, const struct json_value *request)
{
	struct json_writer result = { 0 };
	int ret = hmm_candidate_range_done(candidate,
					   field_handle(request, "range"));

	jw_bool(&result, ret > 0);
	wire_reply(id, ret, &result);
}

static void serve_register(uint64_t id, const struct json_value *request)
{
	wire_reply_int(id, hmm_candidate_register(candidate,
				field_handle(request, "mirror"),
				wire_field_bool(request, "with_ops")));
}

static void serve_unregister(uint64_t id, const struct json_value *request)
{
	wire_reply_null(id, hmm_candidate_unregister(candidate,
				field_handle(request, "mirror")));
}

static void serve_invalidate_start(uint64_t id,
				   const struct json_value *request)
{
	wire_reply_int(id, hmm_candidate_invalidate_start(candidate,
			wire_field_u64(request, "start"),
			wire_field_u64(request, "end"),
			wire_field_bool(request, "blockable")));
}

static void serve_invalidate_end(uint64_t id,
				 const struct json_value *request)
{
	wire_reply_null(id, hmm_candidate_invalidate_end(candidate,
			wire_field_u64(request, "start"),
			wire_field_u64(request, "end")));
}

static void serve_release(uint64_t id, const struct json_value *request)
{
	wire_reply_null(id, hmm_candidate_release(candidate));
}

static const struct wire_method methods[] = {
	{ "begin", { "vmas" }, serve_begin },
	{ "register", { "mirror", "with_ops" }, serve_register },
	{ "unregister", { "mirror" }, serve_unregister },
	{ "snapshot", { "range", "vma", "start", "end", "encoding" },
	  serve_snapshot },
	{ "fault", { "range", "vma", "start", "end", "encoding", "pfns",
		     "block" }, serve_fault },
	{ "observe", { "range" }, serve_observe },
	{ "range_done", { "range" }, serve_range_done },
	{ "invalidate_start", { "start", "end", "blockable" },
	  serve_invalidate_start },
	{ "invalidate_end", { "start", "end" }, serve_invalidate_end },
	{ "release", { NULL }, serve_release },
};

const struct wire_server wire_server = {
	.name = "hmm-c-server",
	.methods = methods,
	.nr_methods = sizeof(methods) / sizeof(methods[0]),
	.common_field = "observe",
	.take_common = take_observe,
	.reply_extra = reply_observed,
	.serves_while_waiting = true,
	.first_refusal = HMM_E_FIRST,
	.refusal = refusal,
};

static void hello(void)
{
	static const char *const keys[] = {
		"type", "protocol", "harness", NULL
	};
	struct json_writer w = { 0 };

	json_free(wire_hello(keys));
	wire_begin_hello(&w, hmm_candidate_name());
	jw_raw(&w, ",\"capabilities\":[\"release\",\"observe-in-callback\","
		   "\"strict\",\"fault\"],\"minor\":");
	jw_int(&w, WIRE_PROTOCOL_MINOR);
	jw_raw(&w, ",\"extensions\":[\"observe-ahead\"]}");
	wire_send(&w);
}

int main(void)
{
	hello();
	candidate = hmm_candidate_new(&host, NULL);
	wire_serve();
	hmm_candidate_free(candidate);
	return EXIT_SUCCESS;
}
