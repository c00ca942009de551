/* SPDX-License-Identifier: MIT */
/*
 * wire.h - the framing of a wire server (docs/wire-protocol.md), shared by
 * the C core's server (ccore/server.c) and the C driver's (cdriver/server.c).
 *
 * One JSON message per line on standard input and output. This module reads
 * and writes the lines, checks the fields of what the harness sends, numbers
 * the calls a server makes and waits for their answers, spells the replies
 * and the common part of the hello, and runs the request loop until bye,
 * handing each request to the serve function of its method. A server states
 * what is its own (its methods, their fields, its refusals) in wire_server.
 *
 * Standard output carries protocol messages only; diagnostics go to standard
 * error. The server exits with 0 after bye or when its input closes, and
 * with 2, naming the line, when the harness breaks the protocol.
 */
#ifndef HMM_CCORE_WIRE_H
#define HMM_CCORE_WIRE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "json.h"

#define WIRE_PROTOCOL		1
#define WIRE_PROTOCOL_MINOR	1	/* 1.1: a hello may offer extensions */
#define WIRE_MAX_FIELDS		7	/* of one method's request */

/* A method: its request's fields (NULL after the last), and who serves it. */
struct wire_method {
	const char *name;
	const char *const fields[WIRE_MAX_FIELDS];
	void (*serve)(uint64_t id, const struct json_value *request);
};

/* What a server states of its own; each defines one, wire_server (below). */
struct wire_server {
	/* The name its diagnostics begin with: "hmm-c-server". */
	const char *name;
	const struct wire_method *methods;
	size_t nr_methods;
	/*
	 * A field any request may carry besides its method's, and what takes
	 * its value before the method is served; NULL for none.
	 */
	const char *common_field;
	void (*take_common)(const struct json_value *value);
	/*
	 * What a reply carries after its result or error (observe-ahead's
	 * views), written by this into the reply; NULL for nothing.
	 */
	void (*reply_extra)(struct json_writer *w);
	/* Does a request that comes while a call waits get served? */
	bool serves_while_waiting;
	/*
	 * A request that returns -@first_refusal or less was refused: the
	 * error kind of its reply, with its message in *@message.
	 */
	int first_refusal;
	const char *(*refusal)(int ret, const char **message);
};

/* The server this program is: each server defines it. */
extern const struct wire_server wire_server;

/* The harness broke the protocol: say @problem and the line, and exit 2. */
_Noreturn void wire_error(const char *problem);

/* Write @w as one line and free it. */
void wire_send(struct json_writer *w);

/*
 * Reading what the harness sent; whatever is not as the protocol says is a
 * wire_error().
 */
void wire_expect_keys(const struct json_value *object,
		      const char *const *keys);
const struct json_value *wire_field(const struct json_value *object,
				    const char *key);
uint64_t wire_field_u64(const struct json_value *object, const char *key);
bool wire_field_bool(const struct json_value *object, const char *key);
/* A number small enough for an int (a handle); else the error @too_large. */
int wire_field_small(const struct json_value *object, const char *key,
		     const char *too_large);
/* An int in an answer: what fits in a C int. */
int wire_int(const struct json_value *value);
/* Each item of the array @array, a u64, into @out; else the error @problem. */
void wire_u64s(const struct json_value *array, uint64_t *out,
	       const char *problem);

struct wire_vma {
	uint64_t start;
	uint64_t end;
	bool read;
	bool write;
	bool special;
};

void wire_vma(const struct json_value *vma, struct wire_vma *out);
/* An encoding: its flags and values; it returns its pfn_shift, unchecked. */
uint64_t wire_encoding(const struct json_value *encoding, uint64_t flags[3],
		       uint64_t values[3]);

/* Begin a call of @method, numbered from 1: its id. */
uint64_t wire_begin_call(struct json_writer *w, const char *method);
/*
 * End the call @id that @w holds, send it and wait for its answer: a message
 * with no field but @keys. A request that comes first is served if the
 * server serves while waiting.
 */
struct json_value *wire_call(struct json_writer *w, uint64_t id,
			     const char *const *keys);

/*
 * Reply to request @id: with the result the writer @result holds (freed), or
 * if @ret is a refusal with the error wire_server.refusal() gives it.
 */
void wire_reply(uint64_t id, int ret, struct json_writer *result);
void wire_reply_null(uint64_t id, int ret);
void wire_reply_int(uint64_t id, int ret);
/* A result of true if @ret is 1. */
void wire_reply_bool(uint64_t id, int ret);

/*
 * The harness's hello, checked for what every side checks (its fields are
 * within @keys); the caller frees it.
 */
struct json_value *wire_hello(const char *const *keys);
/* Begin the hello in reply: the protocol, @name and the build's version. */
void wire_begin_hello(struct json_writer *w, const char *name);

/* Serve requests until bye, which is answered; the end of input exits 0. */
void wire_serve(void);

#endif /* HMM_CCORE_WIRE_H */
