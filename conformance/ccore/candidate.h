/* SPDX-License-Identifier: MIT */
/*
 * candidate.h - the C core as a candidate of the conformance suite.
 *
 * The harness drives a candidate one operation at a time (the
 * conformance.Candidate protocol, docs/writing-an-adapter.md) and names
 * mirrors and ranges by small numbers of its own. This layer keeps the objects
 * behind those numbers for one case, owns the case's mm, and turns the core's
 * calls into drivers and into the page table into calls to its host: the
 * Python adapter (conformance/_ccore.py) or the wire server (server.c).
 *
 * Every function returns 0 or a value, or a negative refusal (HMM_E_*, hmm.h
 * and below): the call was refused as misuse and nothing changed.
 */
#ifndef HMM_CCORE_CANDIDATE_H
#define HMM_CCORE_CANDIDATE_H

#include "hmm.h"

/* What the host does for the core; @host is what hmm_candidate_new() got. */
struct hmm_candidate_host {
	/* A mirror's sync_cpu_device_pagetables(): its answer. */
	int (*sync)(void *host, int mirror, const struct hmm_update *update);
	/* A mirror's release(). */
	void (*release)(void *host, int mirror);
	/* The CPU entries of the pages in [start, end): 0, or -errno. */
	int (*read_ptes)(void *host, unsigned long start, unsigned long end,
			 struct cpu_pte *ptes);
	/* The CPU's fault handler at @addr: 0, or VM_FAULT_* bits (mm.h). */
	int (*handle_mm_fault)(void *host, unsigned long addr, bool write,
			       bool allow_retry, bool nowait);
	/* Wait for the migration of the page at @addr to end. */
	void (*migration_entry_wait)(void *host, unsigned long addr);
};

/* One vma of a case, as the harness describes it. */
struct hmm_vma_spec {
	unsigned long start;
	unsigned long end;
	bool read;
	bool write;
	bool special;		/* hugetlb or VM_SPECIAL */
};

/* A driver's encoding of snapshot entries (§2.6). */
struct hmm_encoding {
	uint64_t flags[HMM_PFN_FLAG_MAX];
	uint64_t values[HMM_PFN_VALUE_MAX];
	unsigned int pfn_shift;
};

/* What the harness sees of a range; entries stay valid until the next call. */
struct hmm_range_view {
	bool registered;
	bool valid;
	size_t npages;
	const uint64_t *entries;
};

/* Refusals of this layer: the harness asked for something it may not. */
#define HMM_E_NESTED		4010	/* only observe, during a host call */
#define HMM_E_NO_RANGE		4011	/* no snapshot by that number */
#define HMM_E_NO_VMA		4012	/* no vma by that number */
#define HMM_E_BAD_SPAN		4013	/* a span that ends before it starts */
#define HMM_E_BAD_SHIFT		4014	/* a pfn_shift of 64 or more */
#define HMM_E_BAD_REQUESTS	4015	/* a fault without one request a page */

struct hmm_candidate;

/*
 * The allocator of the candidate's bookkeeping (and the server's): a harness
 * cannot go on without it, so it stops the program when memory runs out.
 */
void *xcalloc(size_t n, size_t size);

struct hmm_candidate *hmm_candidate_new(const struct hmm_candidate_host *ops,
					void *host);
void hmm_candidate_free(struct hmm_candidate *c);

/* "hmm-c", and the build's switches: "hmm-c+eagain-ignored". */
const char *hmm_candidate_name(void);
/* What a refusal means, in words for the report. */
const char *hmm_candidate_strerror(int refusal);

int hmm_candidate_begin(struct hmm_candidate *c,
			const struct hmm_vma_spec *vmas, size_t nr_vmas);
/* Forget the case (the harness is done with it), as the next begin would. */
int hmm_candidate_end(struct hmm_candidate *c);
int hmm_candidate_register(struct hmm_candidate *c, int mirror,
			   bool with_ops);
int hmm_candidate_unregister(struct hmm_candidate *c, int mirror);
int hmm_candidate_snapshot(struct hmm_candidate *c, int range, size_t vma,
			   unsigned long start, unsigned long end,
			   const struct hmm_encoding *encoding);
/* hmm_vma_fault() of a new range whose entries start as @pfns (@npfns). */
int hmm_candidate_fault(struct hmm_candidate *c, int range, size_t vma,
			unsigned long start, unsigned long end,
			const struct hmm_encoding *encoding,
			const uint64_t *pfns, size_t npfns, bool block);
int hmm_candidate_observe(struct hmm_candidate *c, int range,
			  struct hmm_range_view *view);
int hmm_candidate_range_done(struct hmm_candidate *c, int range);
int hmm_candidate_invalidate_start(struct hmm_candidate *c,
				   unsigned long start, unsigned long end,
				   bool blockable);
int hmm_candidate_invalidate_end(struct hmm_candidate *c,
				 unsigned long start, unsigned long end);
int hmm_candidate_release(struct hmm_candidate *c);

#endif /* HMM_CCORE_CANDIDATE_H */
