// SPDX-License-Identifier: MIT
/*
 * driver.c - a mirror driver of the seed's HMM API: dmirror, in C.
 *
 * The driver half of the protocol as drivers of the 4.18-4.20 API were told
 * to write it (kernel-drivers-usage §1 and §6; kernel-semantics §8, the
 * hmm.h comments), with the shape of hmm_ref's ReferenceDriver: a device page
 * table guarded by two locks, as kernel tables often are (writers hold both,
 * readers hold either):
 *
 * - D, the driver lock: a mutex (lib/test_hmm.c's dmirror, nouveau) or, built
 *   with HMM_DRV_RWSEM, a read/write semaphore (Jérôme Glisse's dummy driver:
 *   faults commit under the read side, invalidations take the write side);
 * - pt_lock, a spinlock, under which a non-blockable invalidation looks,
 *   without sleeping, whether it has anything to do in its span.
 *
 * Rules it keeps (docs/spec.md §8):
 *
 * - DRV-1: with blockable false the callback takes only pt_lock and a
 *   try-lock of D; a busy D gives -EAGAIN with nothing done.
 * - DRV-2: when the callback returns 0 (always when blockable) no device
 *   entry is left in [start, end), and the device TLB flush is done (the
 *   model's device completes a flush at once).
 * - DRV-3: -EAGAIN only when not blockable.
 * - DRV-4: a fault commits only a snapshot whose hmm_vma_range_done()
 *   returned true, called while the fault holds D, which the callback takes
 *   for writing; otherwise it unlocks and starts again from the snapshot.
 * - DRV-5: entries are decoded with the range's own encoding; an entry
 *   without VALID is not committed (its device entry goes), and the WRITE
 *   flag is the only source of device write permission.
 * - DRV-6: a non-blockable update over a span the device does not map
 *   answers 0 without touching D, even while a fault holds it.
 * - DRV-7: nothing but a fault between its lock and unlock steps keeps a
 *   lock when a request returns.
 *
 * The fault path, one request a step (kernel-drivers-usage §6):
 *
 * 1. SNAPSHOT: hmm_vma_get_pfns() into the fault's range; an error ends the
 *    fault, and so does a span with no vma or a mirror already released
 *    (-EFAULT: there is nothing left the device may map).
 * 2. LOCK: take D (mutex_lock() or down_read()), the one step that blocks.
 * 3. CHECK: hmm_vma_range_done(), and the commit if it returned true.
 * 4. UNLOCK: release D; the fault is done, or goes back to step 1.
 *
 * A fault in progress needs no waiting for: HMM marks its range invalid
 * before it calls any mirror (INV-9), so its range_done will say false.
 *
 * Two deliberate bugs are built in only on request (docs/c-candidate.md):
 * HMM_DRV_BUG_SLEEP takes D with mutex_lock()/down_write() in the
 * non-blockable callback, where the try-lock belongs (DRV-1), and
 * HMM_DRV_BUG_NO_RECHECK commits at CHECK whatever range_done said (DRV-4).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "driver.h"
#include "list.h"

#ifdef HMM_DRV_RWSEM
#define DMIRROR_NAME	"dmirror-rwsem"
#else
#define DMIRROR_NAME	"dmirror-mutex"
#endif

/* The most a task's name takes: DMIRROR_NAME "/fault" and a number. */
#define COMM_LEN	48

struct dmirror_fault {
	struct list_head node;		/* on dmirror->faults, newest first */
	struct dmirror *dmirror;
	int id;				/* the harness's number for it */
	char comm[COMM_LEN];		/* the task: DMIRROR_NAME "/faultN" */
	unsigned long start;
	unsigned long end;
	enum dmirror_step next;
	int result;			/* once next is DMIRROR_DONE */
	bool decided;			/* CHECK decided: outcome, not a retry */
	int outcome;
	unsigned int tries;		/* snapshots taken */
	struct hmm_range range;
};

struct dmirror {
	struct drv_env env;
	struct mm_struct mm;
	struct dmirror_encoding encoding;
#ifdef HMM_DRV_RWSEM
	struct rw_semaphore lock;
#else
	struct mutex lock;
#endif
	spinlock_t pt_lock;
	/* The mm's release came: the mirror is unlinked, nothing may map. */
	bool released;
	unsigned int faults_started;
	struct list_head faults;	/* every fault of the case */
	/* The device page table, in address order. */
	struct dmirror_entry *table;
	size_t nr_entries;
	size_t table_cap;
	unsigned long flushes;		/* device TLB flushes */
};

void *xcalloc(size_t n, size_t size)
{
	void *p = calloc(n, size);

	if (!p && n && size) {
		fputs("dmirror-c: out of memory\n", stderr);
		abort();
	}
	return p;
}

const char *dmirror_build_name(void)
{
	return "dmirror-c"
#ifdef HMM_DRV_RWSEM
	       "+rwsem"
#endif
#ifdef HMM_DRV_BUG_NO_RECHECK
	       "+no-recheck"
#endif
#ifdef HMM_DRV_BUG_SLEEP
	       "+sleep"
#endif
	       ;
}

const char *dmirror_name(void)
{
	return DMIRROR_NAME;
}

const char *dmirror_lock_name(void)
{
	return DMIRROR_NAME ".lock";
}

const char *dmirror_strerror(int refusal)
{
	switch (-refusal) {
	case DRV_E_ABANDONED:
		return "a call to the harness failed and the request was abandoned";
	case DRV_E_NO_FAULT:
		return "no fault by this number in this case";
	case DRV_E_FINISHED:
		return "the fault has finished; start a new fault";
	case DRV_E_UNALIGNED:
		return "the fault's span is not page aligned";
	case DRV_E_EMPTY:
		return "the fault's span is empty";
	}
	return "not a refusal";
}

/* -- the driver lock D ---------------------------------------------------- */

static void dmirror_lock_shared(struct dmirror *d)
{
#ifdef HMM_DRV_RWSEM
	down_read(&d->lock);
#else
	mutex_lock(&d->lock);
#endif
}

static void dmirror_unlock_shared(struct dmirror *d)
{
#ifdef HMM_DRV_RWSEM
	up_read(&d->lock);
#else
	mutex_unlock(&d->lock);
#endif
}

static void dmirror_lock_exclusive(struct dmirror *d)
{
#ifdef HMM_DRV_RWSEM
	down_write(&d->lock);
#else
	mutex_lock(&d->lock);
#endif
}

static inline bool dmirror_trylock_exclusive(struct dmirror *d)
{
#ifdef HMM_DRV_RWSEM
	return down_write_trylock(&d->lock);
#else
	return mutex_trylock(&d->lock);
#endif
}

static void dmirror_unlock_exclusive(struct dmirror *d)
{
#ifdef HMM_DRV_RWSEM
	up_write(&d->lock);
#else
	mutex_unlock(&d->lock);
#endif
}

/* Does @f hold D? From its lock step to its unlock step. */
static bool dmirror_fault_holds_lock(const struct dmirror_fault *f)
{
	return f->next == DMIRROR_CHECK || f->next == DMIRROR_UNLOCK;
}

/*
 * Would taking D for writing wait now? Between requests only a fault keeps D
 * (DRV-7), so it would while one holds it. The harness owns the lock's state;
 * the driver knows its own faults.
 */
static bool dmirror_exclusive_busy(struct dmirror *d)
{
	struct dmirror_fault *f;

	list_for_each_entry(f, &d->faults, node)
		if (dmirror_fault_holds_lock(f))
			return true;
	return false;
}

/* Would a fault's lock step wait now? */
static bool dmirror_shared_busy(struct dmirror *d)
{
#ifdef HMM_DRV_RWSEM
	/*
	 * Readers share D; only a writer would make one wait, and the writers
	 * (the callback, release) let D go before they return.
	 */
	return false;
#else
	return dmirror_exclusive_busy(d);
#endif
}

/* -- the device page table ------------------------------------------------ */

/* The index of the first entry at or above @addr. */
static size_t dpt_lower_bound(const struct dmirror *d, unsigned long addr)
{
	size_t lo = 0, hi = d->nr_entries;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (d->table[mid].addr < addr)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

/* Are there entries in [start, end)? pt_lock held. */
static bool dpt_maps(const struct dmirror *d, unsigned long start,
		     unsigned long end)
{
	size_t i = dpt_lower_bound(d, start);

	return i < d->nr_entries && d->table[i].addr < end;
}

/* Remove entries [lo, hi) of the table; how many went. pt_lock held. */
static size_t dpt_remove(struct dmirror *d, size_t lo, size_t hi)
{
	if (lo == hi)
		return 0;	/* the table may not even be allocated */
	memmove(&d->table[lo], &d->table[hi],
		(d->nr_entries - hi) * sizeof(*d->table));
	d->nr_entries -= hi - lo;
	return hi - lo;
}

/* Map @addr to @pfn; pt_lock held. */
static void dpt_set(struct dmirror *d, unsigned long addr, uint64_t pfn,
		    bool write)
{
	size_t i = dpt_lower_bound(d, addr);

	if (i == d->nr_entries || d->table[i].addr != addr) {
		if (d->nr_entries == d->table_cap) {
			size_t cap = d->table_cap ? 2 * d->table_cap : 16;
			struct dmirror_entry *grown = xcalloc(cap, sizeof(*grown));

			if (d->nr_entries)
				memcpy(grown, d->table,
				       d->nr_entries * sizeof(*grown));
			free(d->table);
			d->table = grown;
			d->table_cap = cap;
		}
		memmove(&d->table[i + 1], &d->table[i],
			(d->nr_entries - i) * sizeof(*d->table));
		d->nr_entries++;
		d->table[i].addr = addr;
	}
	d->table[i].pfn = pfn;
	d->table[i].write = write;
}

/* Unmap @addr, if mapped; pt_lock held. */
static void dpt_clear_page(struct dmirror *d, unsigned long addr)
{
	size_t i = dpt_lower_bound(d, addr);

	if (i < d->nr_entries && d->table[i].addr == addr)
		dpt_remove(d, i, i + 1);
}

/*
 * Remove every entry in [start, end), or every entry at all, then flush the
 * device TLB; how many went. D held for writing.
 */
static size_t dmirror_clear(struct dmirror *d, unsigned long start,
			    unsigned long end, bool everything)
{
	size_t cleared;

	spin_lock(&d->pt_lock);
	if (everything)
		cleared = dpt_remove(d, 0, d->nr_entries);
	else
		cleared = dpt_remove(d, dpt_lower_bound(d, start),
				     dpt_lower_bound(d, end));
	spin_unlock(&d->pt_lock);
	d->flushes++;
	return cleared;
}

/* Write a confirmed snapshot into the device page table. D held. */
static void dmirror_commit(struct dmirror *d, const struct hmm_range *range)
{
	size_t i;

	spin_lock(&d->pt_lock);
	for (i = 0; i < range->npages; i++) {
		unsigned long addr = range->start + (i << PAGE_SHIFT);
		uint64_t entry = range->pfns[i], pfn;

		if (hmm_pfn_to_pfn(range, entry, &pfn))
			dpt_set(d, addr, pfn,
				entry & range->flags[HMM_PFN_WRITE]);
		else
			dpt_clear_page(d, addr);
	}
	spin_unlock(&d->pt_lock);
}

/* -- the callbacks -------------------------------------------------------- */

static int dmirror_sync_non_blockable(struct dmirror *d, unsigned long start,
				      unsigned long end)
{
	bool mapped;

	spin_lock(&d->pt_lock);
	mapped = dpt_maps(d, start, end);
	spin_unlock(&d->pt_lock);
	if (!mapped)
		return 0;	/* nothing here to tear down: no reason to refuse (DRV-6) */
#ifdef HMM_DRV_BUG_SLEEP
	dmirror_lock_exclusive(d);	/* the bug: it may sleep (DRV-1) */
#else
	if (!dmirror_trylock_exclusive(d))
		return -EAGAIN;
#endif
	dmirror_clear(d, start, end, false);
	dmirror_unlock_exclusive(d);
	return 0;
}

/*
 * sync_cpu_device_pagetables(): clear the device entries in [start, end),
 * flush, and return 0. Blockable: take D for writing, clear, release. Not
 * blockable: see dmirror_sync_non_blockable(); -EAGAIN if D is busy.
 */
static int dmirror_sync_cpu_device_pagetables(struct dmirror *d,
					      unsigned long start,
					      unsigned long end,
					      bool blockable)
{
	if (!blockable)
		return dmirror_sync_non_blockable(d, start, end);
	dmirror_lock_exclusive(d);
	dmirror_clear(d, start, end, false);
	dmirror_unlock_exclusive(d);
	return 0;
}

/*
 * release(): the mm is going away. HMM has unlinked the mirror already, so
 * later faults stop; take D, drop every device entry, flush, release D.
 */
static void dmirror_mirror_release(struct dmirror *d)
{
	d->released = true;
	dmirror_lock_exclusive(d);
	dmirror_clear(d, 0, 0, true);
	dmirror_unlock_exclusive(d);
}

/* -- the fault path ------------------------------------------------------- */

static void dmirror_fault_finish(struct dmirror_fault *f, int result)
{
	f->result = result;
	f->next = DMIRROR_DONE;
}

static void dmirror_fault_snapshot(struct dmirror_fault *f)
{
	struct dmirror *d = f->dmirror;
	struct vm_area_struct *vma;
	unsigned long last;
	size_t npages;
	int ret;

	f->tries++;
	vma = find_vma(&d->mm, f->start);
	if (!vma || d->released) {
		/* No vma, or the mirror was released: nothing the device may map. */
		dmirror_fault_finish(f, -EFAULT);
		return;
	}
	/* Entries for the part inside the vma: HMM refuses any more. */
	last = umin(f->end, vma->vm_end);
	npages = (last - f->start) >> PAGE_SHIFT;
	if (npages > f->range.npages) {
		free(f->range.pfns);
		f->range.pfns = xcalloc(npages, sizeof(*f->range.pfns));
	}
	f->range.npages = npages;
	ret = hmm_vma_get_pfns(&f->range);
	if (ret) {
		dmirror_fault_finish(f, ret);	/* nothing was registered */
		return;
	}
	f->next = DMIRROR_LOCK;
}

static void dmirror_fault_check(struct dmirror_fault *f)
{
	struct dmirror *d = f->dmirror;
	bool valid = hmm_vma_range_done(&f->range);
	/*
	 * A released mirror hears no more invalidations, and the seed's release
	 * leaves ranges valid (REL-3): a true here could be stale.
	 */
	bool live = !d->released;

#ifdef HMM_DRV_BUG_NO_RECHECK
	valid = true;	/* the bug: range_done's answer is not looked at (DRV-4) */
#endif
	if (valid && live) {
		dmirror_commit(d, &f->range);
		f->decided = true;
		f->outcome = 0;
	} else if (live) {
		f->decided = false;	/* the snapshot was stale: again */
	} else {
		f->decided = true;
		f->outcome = -EFAULT;
	}
	f->next = DMIRROR_UNLOCK;
}

static void dmirror_fault_unlock(struct dmirror_fault *f)
{
	dmirror_unlock_shared(f->dmirror);
	if (f->decided)
		dmirror_fault_finish(f, f->outcome);
	else
		f->next = DMIRROR_SNAPSHOT;
}

/* Take the next step of @f, which has not finished. */
static enum dmirror_step dmirror_fault_step(struct dmirror_fault *f)
{
	enum dmirror_step step = f->next;

	switch (step) {
	case DMIRROR_SNAPSHOT:
		dmirror_fault_snapshot(f);
		break;
	case DMIRROR_LOCK:
		dmirror_lock_shared(f->dmirror);
		f->next = DMIRROR_CHECK;
		break;
	case DMIRROR_CHECK:
		dmirror_fault_check(f);
		break;
	case DMIRROR_UNLOCK:
		dmirror_fault_unlock(f);
		break;
	case DMIRROR_DONE:
		BUG_ON(step == DMIRROR_DONE);	/* the caller refuses it */
		break;
	}
	return step;
}

/* -- requests: entered as a task, left by return or by the host's failure -- */

/* What a request's body gets. */
struct dmirror_call {
	unsigned long start;
	unsigned long end;
	bool blockable;
	int reply;
	struct dmirror_fault *fault;
	enum dmirror_step taken;
};

/*
 * Run @body as the task @comm: 0, or -DRV_E_ABANDONED if a call to the host
 * failed, which unwinds to here from wherever the body was (drv_abandon()).
 */
static int drv_enter(struct dmirror *d, const char *comm,
		     void (*body)(struct dmirror *d, struct dmirror_call *call),
		     struct dmirror_call *call)
{
	jmp_buf unwind;

	d->env.unwind = &unwind;
	d->env.current = comm;
	if (setjmp(unwind)) {
		d->env.unwind = NULL;
		return -DRV_E_ABANDONED;
	}
	body(d, call);
	d->env.unwind = NULL;
	return 0;
}

static void sync_body(struct dmirror *d, struct dmirror_call *call)
{
	call->reply = dmirror_sync_cpu_device_pagetables(d, call->start,
							 call->end,
							 call->blockable);
}

static void release_body(struct dmirror *d, struct dmirror_call *call)
{
	dmirror_mirror_release(d);
}

static void step_body(struct dmirror *d, struct dmirror_call *call)
{
	call->taken = dmirror_fault_step(call->fault);
}

int dmirror_sync(struct dmirror *d, unsigned long start, unsigned long end,
		 bool blockable, int *reply)
{
	struct dmirror_call call = {
		.start = start, .end = end, .blockable = blockable,
	};
	int ret = drv_enter(d, DMIRROR_NAME "/sync", sync_body, &call);

	*reply = call.reply;
	return ret;
}

int dmirror_release(struct dmirror *d)
{
	struct dmirror_call call = { 0 };

	return drv_enter(d, DMIRROR_NAME "/release", release_body, &call);
}

static struct dmirror_fault *dmirror_fault_find(struct dmirror *d, int id)
{
	struct dmirror_fault *f;

	list_for_each_entry(f, &d->faults, node)
		if (f->id == id)
			return f;
	return NULL;
}

int dmirror_start_fault(struct dmirror *d, int fault, unsigned long start,
			unsigned long end)
{
	struct dmirror_fault *f;

	if ((start | end) & (PAGE_SIZE - 1))
		return -DRV_E_UNALIGNED;
	if (end <= start)
		return -DRV_E_EMPTY;
	f = xcalloc(1, sizeof(*f));
	f->dmirror = d;
	f->id = fault;
	snprintf(f->comm, sizeof(f->comm), DMIRROR_NAME "/fault%u",
		 ++d->faults_started);
	f->start = start;
	f->end = end;
	f->next = DMIRROR_SNAPSHOT;
	f->range.mm = &d->mm;
	f->range.id = (int)d->faults_started;
	f->range.start = start;
	f->range.end = end;
	f->range.flags = d->encoding.flags;
	f->range.values = d->encoding.values;
	f->range.pfn_shift = d->encoding.pfn_shift;
	list_add(&f->node, &d->faults);
	return 0;
}

int dmirror_step_fault(struct dmirror *d, int fault, enum dmirror_step *taken)
{
	struct dmirror_call call = { .fault = dmirror_fault_find(d, fault) };
	int ret;

	if (!call.fault)
		return -DRV_E_NO_FAULT;
	if (call.fault->next == DMIRROR_DONE)
		return -DRV_E_FINISHED;
	ret = drv_enter(d, call.fault->comm, step_body, &call);
	*taken = call.taken;
	return ret;
}

int dmirror_fault_view(struct dmirror *d, int fault,
		       struct dmirror_fault_view *view)
{
	struct dmirror_fault *f = dmirror_fault_find(d, fault);

	if (!f)
		return -DRV_E_NO_FAULT;
	view->next = f->next;
	view->result = f->result;
	return 0;
}

int dmirror_fault_would_block(struct dmirror *d, int fault)
{
	struct dmirror_fault *f = dmirror_fault_find(d, fault);

	if (!f)
		return -DRV_E_NO_FAULT;
	return f->next == DMIRROR_LOCK && dmirror_shared_busy(d);
}

/* A non-blockable callback never waits; a blockable one takes D to write. */
int dmirror_invalidation_would_block(struct dmirror *d, bool blockable)
{
	return blockable && dmirror_exclusive_busy(d);
}

int dmirror_release_would_block(struct dmirror *d)
{
	return dmirror_exclusive_busy(d);
}

uint64_t *dmirror_range_pfns(struct dmirror *d, int range, size_t *npages)
{
	struct dmirror_fault *f;

	list_for_each_entry(f, &d->faults, node) {
		if (f->range.id == range) {
			*npages = f->range.npages;
			return f->range.pfns;
		}
	}
	return NULL;
}

size_t dmirror_device_page_table(struct dmirror *d,
				 const struct dmirror_entry **entries)
{
	*entries = d->table;
	return d->nr_entries;
}

/* -- the case ------------------------------------------------------------- */

struct dmirror *dmirror_new(const struct drv_host_ops *ops, void *host)
{
	struct dmirror *d = xcalloc(1, sizeof(*d));

	d->env.ops = *ops;
	d->env.host = host;
	d->mm.env = &d->env;
#ifdef HMM_DRV_RWSEM
	init_rwsem(&d->lock, &d->env, DMIRROR_NAME ".lock");
#else
	mutex_init(&d->lock, &d->env, DMIRROR_NAME ".lock");
#endif
	spin_lock_init(&d->pt_lock, &d->env, DMIRROR_NAME ".pt_lock");
	INIT_LIST_HEAD(&d->faults);
	return d;
}

void dmirror_end(struct dmirror *d)
{
	struct dmirror_fault *f, *n;

	list_for_each_entry_safe(f, n, &d->faults, node) {
		list_del_init(&f->node);
		free(f->range.pfns);
		free(f);
	}
	free(d->mm.vmas);
	d->mm.vmas = NULL;
	d->mm.nr_vmas = 0;
	d->nr_entries = 0;
	d->released = false;
	d->faults_started = 0;
	d->flushes = 0;
}

int dmirror_begin(struct dmirror *d, const struct dmirror_vma *vmas,
		  size_t nr_vmas, const struct dmirror_encoding *encoding)
{
	size_t i;

	dmirror_end(d);
	d->mm.vmas = xcalloc(nr_vmas, sizeof(*d->mm.vmas));
	for (i = 0; i < nr_vmas; i++) {
		d->mm.vmas[i].vm_start = vmas[i].start;
		d->mm.vmas[i].vm_end = vmas[i].end;
	}
	d->mm.nr_vmas = nr_vmas;
	d->encoding = *encoding;
	return 0;
}

void dmirror_free(struct dmirror *d)
{
	dmirror_end(d);
	free(d->table);
	free(d);
}
