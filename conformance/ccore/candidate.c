// SPDX-License-Identifier: MIT
/*
 * candidate.c - the case, its numbered mirrors and ranges, and the host.
 *
 * See candidate.h. A number names the newest object made for it in this case,
 * as a dictionary of the harness's would: a number used twice leaves the
 * older object registered but out of reach. Objects live until the case ends.
 *
 * Only observe may come in while the core waits on the host (a mirror
 * callback, a page-table read, or the CPU's fault handling): the harness looks at ranges from inside a
 * callback (INV-9) and does nothing else there. Anything else would re-enter
 * the core holding its locks (a registration from inside a mirror pass takes
 * mirrors_sem for write while the pass holds it for read, which deadlocks
 * the seed), so it is refused.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "candidate.h"

struct hmm_candidate {
	struct hmm_candidate_host ops;
	void *host;
	struct mm_struct mm;
	struct list_head mirrors;	/* struct candidate_mirror, newest first */
	struct list_head ranges;	/* struct candidate_range, newest first */
	unsigned int host_calls;	/* calls into the host in progress */
};

struct candidate_mirror {
	struct hmm_mirror mirror;
	struct hmm_candidate *candidate;
	struct list_head node;		/* on candidate->mirrors */
	int id;
};

struct candidate_range {
	struct hmm_range range;
	struct list_head node;		/* on candidate->ranges */
	int id;
	uint64_t flags[HMM_PFN_FLAG_MAX];
	uint64_t values[HMM_PFN_VALUE_MAX];
};

void *xcalloc(size_t n, size_t size)
{
	void *p = calloc(n, size);

	if (!p && n && size) {
		fputs("hmm-c: out of memory\n", stderr);
		abort();
	}
	return p;
}

static int candidate_sync(struct hmm_mirror *mirror,
			  const struct hmm_update *update)
{
	struct candidate_mirror *m =
		container_of(mirror, struct candidate_mirror, mirror);
	struct hmm_candidate *c = m->candidate;
	int ret;

	c->host_calls++;
	ret = c->ops.sync(c->host, m->id, update);
	c->host_calls--;
	return ret;
}

static void candidate_release(struct hmm_mirror *mirror)
{
	struct candidate_mirror *m =
		container_of(mirror, struct candidate_mirror, mirror);
	struct hmm_candidate *c = m->candidate;

	c->host_calls++;
	c->ops.release(c->host, m->id);
	c->host_calls--;
}

static const struct hmm_mirror_ops candidate_mirror_ops = {
	.release = candidate_release,
	.sync_cpu_device_pagetables = candidate_sync,
};

static int candidate_read_ptes(struct mm_struct *mm, unsigned long start,
			       unsigned long end, struct cpu_pte *ptes)
{
	struct hmm_candidate *c = container_of(mm, struct hmm_candidate, mm);
	int ret;

	c->host_calls++;
	ret = c->ops.read_ptes(c->host, start, end, ptes);
	c->host_calls--;
	return ret;
}

static int candidate_handle_mm_fault(struct mm_struct *mm, unsigned long addr,
				     unsigned int flags)
{
	struct hmm_candidate *c = container_of(mm, struct hmm_candidate, mm);
	int ret;

	c->host_calls++;
	ret = c->ops.handle_mm_fault(c->host, addr, flags & FAULT_FLAG_WRITE,
				     flags & FAULT_FLAG_ALLOW_RETRY,
				     flags & FAULT_FLAG_RETRY_NOWAIT);
	c->host_calls--;
	return ret;
}

static void candidate_migration_entry_wait(struct mm_struct *mm,
					   unsigned long addr)
{
	struct hmm_candidate *c = container_of(mm, struct hmm_candidate, mm);

	c->host_calls++;
	c->ops.migration_entry_wait(c->host, addr);
	c->host_calls--;
}

/* An mm with no vma, no notifier and no hmm. */
static void candidate_mm_init(struct hmm_candidate *c)
{
	struct mm_struct *mm = &c->mm;

	mm->vmas = NULL;
	mm->nr_vmas = 0;
	mm->read_ptes = candidate_read_ptes;
	mm->handle_mm_fault = candidate_handle_mm_fault;
	mm->migration_entry_wait = candidate_migration_entry_wait;
	INIT_LIST_HEAD(&mm->mmu_notifiers);
	mm->exited = false;
	mm->hmm = NULL;
	INIT_LIST_HEAD(&mm->retired_hmms);
}

/* Forget the case: every mirror, range and hmm of it, and its vmas. */
static void candidate_end_case(struct hmm_candidate *c)
{
	struct candidate_mirror *m, *next_mirror;
	struct candidate_range *r, *next_range;

	list_for_each_entry_safe(m, next_mirror, &c->mirrors, node)
		free(m);
	INIT_LIST_HEAD(&c->mirrors);
	list_for_each_entry_safe(r, next_range, &c->ranges, node) {
		free(r->range.pfns);
		free(r);
	}
	INIT_LIST_HEAD(&c->ranges);
	hmm_mm_destroy(&c->mm);
	free(c->mm.vmas);
	candidate_mm_init(c);
}

struct hmm_candidate *hmm_candidate_new(const struct hmm_candidate_host *ops,
					void *host)
{
	struct hmm_candidate *c = xcalloc(1, sizeof(*c));

	c->ops = *ops;
	c->host = host;
	INIT_LIST_HEAD(&c->mirrors);
	INIT_LIST_HEAD(&c->ranges);
	candidate_mm_init(c);
	return c;
}

void hmm_candidate_free(struct hmm_candidate *c)
{
	candidate_end_case(c);
	free(c);
}

const char *hmm_candidate_name(void)
{
	return "hmm-c"
#ifdef HMM_BUG_EAGAIN_IGNORED
		"+eagain-ignored"
#endif
#ifdef HMM_BUG_NO_RANGE_CLEAR
		"+no-range-clear"
#endif
#ifdef HMM_SEED_LOCKING
		"+seed-locking"
#endif
		;
}

const char *hmm_candidate_strerror(int refusal)
{
	switch (-refusal) {
	case HMM_E_LIVELOCK:
		return "hmm_mirror_register: a mirror of this mm was unregistered while others "
		       "stayed, which left its struct hmm poisoned (hmm->mm == NULL); the seed "
		       "retries for ever here (REG-5, fixed in 5.1); nothing was changed";
	case HMM_E_RANGE_EMPTY:
		return "hmm_vma_range_done: the range has end <= start, where the seed BUG()s "
		       "(RNG-9); nothing was changed";
	case HMM_E_RANGE_UNLISTED:
		return "hmm_vma_range_done: the range is on no list (never registered, a failed "
		       "snapshot, or done already), and the seed's list_del() would corrupt "
		       "memory (RNG-9); nothing was changed";
	case HMM_E_RANGE_LISTED:
		return "hmm_vma_fault: the range is still registered; call "
		       "hmm_vma_range_done before faulting it again; nothing was changed";
	case HMM_E_FAULT_EMPTY:
		return "hmm_vma_fault: the range has end <= start, where the seed's error "
		       "path BUG()s; nothing was changed";
	case HMM_E_MM_EXITED:
		return "the mm has exited and has no struct hmm; the seed would create one and "
		       "BUG() registering its notifier";
	case HMM_E_NESTED:
		return "only observe may be called while the candidate waits on a mirror "
		       "callback or a page-table read";
	case HMM_E_NO_RANGE:
		return "no snapshot by this number in this case";
	case HMM_E_NO_VMA:
		return "no vma by this number in this case";
	case HMM_E_BAD_SPAN:
		return "the span ends before it starts (or, for an invalidation or a "
		       "fault, where it starts); the kernel never makes one";
	case HMM_E_BAD_SHIFT:
		return "pfn_shift is 64 or more; an entry has 64 bits";
	case HMM_E_BAD_REQUESTS:
		return "a fault's requests are not one entry a page of its span";
	}
	return "not a refusal";
}

int hmm_candidate_begin(struct hmm_candidate *c,
			const struct hmm_vma_spec *vmas, size_t nr_vmas)
{
	size_t i;

	if (c->host_calls)
		return -HMM_E_NESTED;
	candidate_end_case(c);
	c->mm.vmas = xcalloc(nr_vmas, sizeof(*c->mm.vmas));
	c->mm.nr_vmas = nr_vmas;
	for (i = 0; i < nr_vmas; i++) {
		struct vm_area_struct *vma = &c->mm.vmas[i];

		vma->vm_start = vmas[i].start;
		vma->vm_end = vmas[i].end;
		vma->vm_flags = (vmas[i].read ? VM_READ : 0) |
				(vmas[i].write ? VM_WRITE : 0) |
				(vmas[i].special ? VM_SPECIAL : 0);
		vma->vm_mm = &c->mm;
	}
	return 0;
}

int hmm_candidate_end(struct hmm_candidate *c)
{
	if (c->host_calls)
		return -HMM_E_NESTED;
	candidate_end_case(c);
	return 0;
}

static struct candidate_mirror *candidate_mirror(struct hmm_candidate *c,
						 int id)
{
	struct candidate_mirror *m;

	list_for_each_entry(m, &c->mirrors, node)
		if (m->id == id)
			return m;
	return NULL;
}

static struct candidate_range *candidate_range(struct hmm_candidate *c,
					       int id)
{
	struct candidate_range *r;

	list_for_each_entry(r, &c->ranges, node)
		if (r->id == id)
			return r;
	return NULL;
}

int hmm_candidate_register(struct hmm_candidate *c, int mirror,
			   bool with_ops)
{
	struct candidate_mirror *m;

	if (c->host_calls)
		return -HMM_E_NESTED;
	m = xcalloc(1, sizeof(*m));
	m->candidate = c;
	m->id = mirror;
	m->mirror.ops = with_ops ? &candidate_mirror_ops : NULL;
	INIT_LIST_HEAD(&m->mirror.list);
	list_add(&m->node, &c->mirrors);
	return hmm_mirror_register(&m->mirror, &c->mm);
}

int hmm_candidate_unregister(struct hmm_candidate *c, int mirror)
{
	struct candidate_mirror *m;

	if (c->host_calls)
		return -HMM_E_NESTED;
	m = candidate_mirror(c, mirror);
	if (m)
		hmm_mirror_unregister(&m->mirror);
	return 0;
}

/*
 * A new range numbered @range over [start, end) of vma @vma, its entries 0,
 * or NULL with *@ret the refusal of the arguments.
 */
static struct candidate_range *candidate_new_range(struct hmm_candidate *c,
		int range, size_t vma, unsigned long start, unsigned long end,
		const struct hmm_encoding *encoding, int *ret)
{
	struct candidate_range *r;
	unsigned long npages;

	*ret = 0;
	if (c->host_calls)
		*ret = -HMM_E_NESTED;
	else if (vma >= c->mm.nr_vmas)
		*ret = -HMM_E_NO_VMA;
	/* The seed would register a reversed range, then clear past it. */
	else if (end < start)
		*ret = -HMM_E_BAD_SPAN;
	else if (encoding->pfn_shift >= 64)
		*ret = -HMM_E_BAD_SHIFT;
	if (*ret)
		return NULL;

	npages = (end - start) >> PAGE_SHIFT;
	r = xcalloc(1, sizeof(*r));
	r->id = range;
	memcpy(r->flags, encoding->flags, sizeof(r->flags));
	memcpy(r->values, encoding->values, sizeof(r->values));
	r->range.vma = &c->mm.vmas[vma];
	INIT_LIST_HEAD(&r->range.list);
	r->range.start = start;
	r->range.end = end;
	/* The caller's array: entries the walk does not reach stay 0. */
	r->range.pfns = xcalloc(npages, sizeof(*r->range.pfns));
	r->range.flags = r->flags;
	r->range.values = r->values;
	r->range.pfn_shift = encoding->pfn_shift;
	list_add(&r->node, &c->ranges);
	return r;
}

int hmm_candidate_snapshot(struct hmm_candidate *c, int range, size_t vma,
			   unsigned long start, unsigned long end,
			   const struct hmm_encoding *encoding)
{
	int ret;
	struct candidate_range *r = candidate_new_range(c, range, vma, start,
							end, encoding, &ret);

	return r ? hmm_vma_get_pfns(&r->range) : ret;
}

int hmm_candidate_fault(struct hmm_candidate *c, int range, size_t vma,
			unsigned long start, unsigned long end,
			const struct hmm_encoding *encoding,
			const uint64_t *pfns, size_t npfns, bool block)
{
	struct candidate_range *r;
	int ret;

	/* Checked first: a refused fault makes no range. */
	if (c->host_calls)
		return -HMM_E_NESTED;
	if (end <= start)
		return -HMM_E_BAD_SPAN;
	if (npfns != (end - start) >> PAGE_SHIFT)
		return -HMM_E_BAD_REQUESTS;
	r = candidate_new_range(c, range, vma, start, end, encoding, &ret);
	if (!r)
		return ret;
	memcpy(r->range.pfns, pfns, npfns * sizeof(*pfns));
	return hmm_vma_fault(&r->range, block);
}

int hmm_candidate_observe(struct hmm_candidate *c, int range,
			  struct hmm_range_view *view)
{
	struct candidate_range *r = candidate_range(c, range);

	if (!r)
		return -HMM_E_NO_RANGE;
	view->registered = !list_empty(&r->range.list);
	view->valid = r->range.valid;
	view->npages = (r->range.end - r->range.start) >> PAGE_SHIFT;
	view->entries = r->range.pfns;
	return 0;
}

int hmm_candidate_range_done(struct hmm_candidate *c, int range)
{
	struct candidate_range *r;

	if (c->host_calls)
		return -HMM_E_NESTED;
	r = candidate_range(c, range);
	if (!r)
		return -HMM_E_NO_RANGE;
	return hmm_vma_range_done(&r->range);
}

int hmm_candidate_invalidate_start(struct hmm_candidate *c,
				   unsigned long start, unsigned long end,
				   bool blockable)
{
	if (c->host_calls)
		return -HMM_E_NESTED;
	if (end <= start)
		return -HMM_E_BAD_SPAN;
	return mmu_notifier_invalidate_range_start(&c->mm, start, end,
						   blockable);
}

int hmm_candidate_invalidate_end(struct hmm_candidate *c,
				 unsigned long start, unsigned long end)
{
	if (c->host_calls)
		return -HMM_E_NESTED;
	if (end <= start)
		return -HMM_E_BAD_SPAN;
	mmu_notifier_invalidate_range_end(&c->mm, start, end);
	return 0;
}

/* The process exits: exit_mmap() releases the mm's notifiers. */
int hmm_candidate_release(struct hmm_candidate *c)
{
	if (c->host_calls)
		return -HMM_E_NESTED;
	mmu_notifier_release(&c->mm);
	return 0;
}
