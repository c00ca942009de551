// SPDX-License-Identifier: MIT
/*
 * hmm.c - the HMM core of the seed: mm/hmm.c after "mm/hmm: proper support
 * for blockable mmu_notifier" (mainline 4.20), written from the project's
 * reconstruction of its behaviour, shared/kernel/kernel-semantics.md, alone:
 * no kernel source was copied or consulted.
 *
 * The rules it states (§ is kernel-semantics.md):
 *
 * 1. One struct hmm per mm, created on demand by hmm_register() from a mirror
 *    registration or a snapshot, published in mm->hmm; creating it puts HMM's
 *    notifier on the mm's chain (§3.1).
 * 2. Mirrors and ranges are added at the head of their lists, so every walk
 *    meets the newest first (§2.1; REG-4, REL-2).
 * 3. Unregistering any mirror sets hmm->mm to NULL, even when others remain
 *    (§3.3 rule 2). A later registration on that mm would retry for ever
 *    (§3.2 rule 7): this core says so instead (REG-5).
 * 4. An invalidation runs the range pass first (every overlapping range
 *    invalid, its entries inside the overlap zeroed), then, at start only,
 *    the mirror pass: every mirror, newest first, gets {start, end,
 *    INVALIDATE, blockable}; when not blockable the first exact -EAGAIN stops
 *    the pass and is the result; every other answer is ignored, and every
 *    answer when blockable (§3.5; INV-1..9, END-1..2, RNG-3..5).
 * 5. valid is sticky: only a new registration sets it again (§2.6, RNG-6).
 * 6. Release unlinks the mirrors newest first and calls each one's release op
 *    with mirrors_sem dropped; it touches no range (§3.4; REL-1..3).
 * 7. hmm_vma_fault() registers its range as a snapshot does, then faults in
 *    what the entries ask for, page by page, through the mm's fault handler,
 *    starting again at a page after each fault that succeeds or migration it
 *    waited for; any error unregisters the range again (§3.8).
 *
 * Where this core departs from the seed, on purpose:
 *
 * - The mirror pass of a non-blockable start takes mirrors_sem with
 *   down_read_trylock() and gives -EAGAIN if that fails, as 5.2 did ([JERR]);
 *   the seed takes it with down_read() in both modes and argues the wait is
 *   short (§3.5 rule 1, §9). In one task the try cannot fail (nothing holds
 *   mirrors_sem for write while a start runs), so every result is the seed's.
 *   Build with -DHMM_SEED_LOCKING to take it the seed's way.
 * - The seed frees the hmm at the last unregister (§3.3 rule 4c) and leaves
 *   pointers to it behind: in mirrors that release unlinked (§3.4 rule 5) and
 *   in ranges still listed (§3.3 rule 5); the next unregister of such a mirror
 *   reads the freed hmm. This core retires the hmm there instead and frees
 *   it in hmm_mm_destroy(), so that read finds hmm->mm == NULL, which is what
 *   the seed's finds until the memory is reused, and nothing is read freed.
 * - Where the seed would loop for ever, BUG() or corrupt a list, the call
 *   returns a refusal (hmm.h, HMM_E_*) and changes nothing.
 * - The page walk reads the CPU page table through mm->read_ptes(). A read
 *   that fails takes the range off the list again and returns the error, as
 *   hmm_vma_fault() does with its errors (§3.8 rule 6); the seed's snapshot
 *   walk has no such failure.
 * - The faulting walk goes page by page, where the seed's goes by page-table
 *   level: after an error, the entries from the failing page on become
 *   values[NONE], where the seed starts at the hole or pte it was walking,
 *   which may lie before that page (§3.8 rule 6; the rules allow both).
 *
 * Two deliberate bugs, for the conformance suite to catch, are built in only
 * when asked: -DHMM_BUG_EAGAIN_IGNORED (a mirror's -EAGAIN does not stop a
 * non-blockable pass, whose result is then 0: INV-4) and
 * -DHMM_BUG_NO_RANGE_CLEAR (the range pass leaves the entries of the overlap
 * as they were: RNG-3, END-2).
 */
#include <stdlib.h>

#include "hmm.h"
#include "locks.h"

/* struct hmm - the HMM state of one mm (§2.1) */
struct hmm {
	struct mm_struct *mm;		/* NULL once any mirror unregistered */
	spinlock_t lock;		/* ranges, each one's valid and pfns */
	struct list_head ranges;	/* newest first */
	struct list_head mirrors;	/* newest first */
	struct rw_semaphore mirrors_sem;
	struct mmu_notifier mmu_notifier;
	struct list_head retired;	/* on mm->retired_hmms once retired */
};

/* How many CPU entries the page walk reads at a time. */
#define HMM_WALK_BATCH	64

static const struct mmu_notifier_ops hmm_mmu_notifier_ops;

static unsigned long hmm_range_npages(const struct hmm_range *range)
{
	return (range->end - range->start) >> PAGE_SHIFT;
}

static void hmm_pfns_fill(struct hmm_range *range, uint64_t value)
{
	unsigned long i, npages = hmm_range_npages(range);

	for (i = 0; i < npages; i++)
		range->pfns[i] = value;
}

/*
 * hmm_register - the mm's hmm, created if there is none (§3.1)
 *
 * An existing hmm is returned as it is, even one whose mm is NULL (rule 1).
 * The seed returns NULL where this returns ERR_PTR(-ENOMEM). Two steps of the
 * seed have nothing to do in one task: the check, under page_table_lock, that
 * no other thread published an hmm first (rule 3), and the failure of the
 * notifier registration (rule 4).
 */
static struct hmm *hmm_register(struct mm_struct *mm)
{
	struct hmm *hmm = mm->hmm;

	if (hmm)
		return hmm;
	/* The seed would BUG() in __mmu_notifier_register: mm_users is 0. */
	if (mm->exited)
		return ERR_PTR(-HMM_E_MM_EXITED);

	hmm = calloc(1, sizeof(*hmm));
	if (!hmm)
		return ERR_PTR(-ENOMEM);
	hmm->mm = mm;
	spin_lock_init(&hmm->lock);
	INIT_LIST_HEAD(&hmm->ranges);
	INIT_LIST_HEAD(&hmm->mirrors);
	init_rwsem(&hmm->mirrors_sem);
	INIT_LIST_HEAD(&hmm->retired);

	/* Published before the notifier is registered: the post-3/7 order. */
	mm->hmm = hmm;
	hmm->mmu_notifier.ops = &hmm_mmu_notifier_ops;
	mmu_notifier_register(&hmm->mmu_notifier, mm);
	return hmm;
}

/*
 * The seed's kfree() of the hmm (§3.3 rule 4c). Kept until the mm goes so
 * that the pointers the seed leaves dangling stay readable (see the top).
 */
static void hmm_retire(struct hmm *hmm, struct mm_struct *mm)
{
	list_add(&hmm->retired, &mm->retired_hmms);
}

/* hmm_mm_destroy - free the mm's hmm, and every retired one (__mmdrop) */
void hmm_mm_destroy(struct mm_struct *mm)
{
	struct hmm *hmm, *next;

	list_for_each_entry_safe(hmm, next, &mm->retired_hmms, retired)
		free(hmm);
	INIT_LIST_HEAD(&mm->retired_hmms);
	free(mm->hmm);
	mm->hmm = NULL;
}

/*
 * hmm_mirror_register - register @mirror on @mm (§3.2)
 *
 * Returns 0 (REG-2), -EINVAL for a mirror without ops (REG-1), -ENOMEM if the
 * hmm cannot be allocated, or -HMM_E_LIVELOCK where the seed never returns.
 * No check that @mirror is not registered already (rule 5).
 */
int hmm_mirror_register(struct hmm_mirror *mirror, struct mm_struct *mm)
{
	struct hmm *hmm;

	if (!mm || !mirror || !mirror->ops)
		return -EINVAL;

	hmm = hmm_register(mm);
	if (IS_ERR(hmm)) {
		mirror->hmm = NULL;
		return PTR_ERR(hmm);
	}
	mirror->hmm = hmm;

	down_write(&hmm->mirrors_sem);
	if (!hmm->mm) {
		/*
		 * Rules 3 and 7, REG-5. The seed drops the semaphore, clears
		 * mirror->hmm and goes back to hmm_register(), expecting the
		 * unregister that poisoned this hmm to free it. Nothing will:
		 * mm->hmm keeps pointing here and the seed retries for ever
		 * (fixed in 5.1 by reference counting, [REF]).
		 */
		up_write(&hmm->mirrors_sem);
		mirror->hmm = NULL;
		return -HMM_E_LIVELOCK;
	}
	list_add(&mirror->list, &hmm->mirrors);
	up_write(&hmm->mirrors_sem);
	return 0;
}

/*
 * hmm_mirror_unregister - stop mirroring (§3.3, post-3/7)
 *
 * A mirror that is not registered is left alone (REG-3). hmm->mm is cleared
 * every time, which poisons the hmm when other mirrors remain (REG-5); the
 * hmm goes away only when its last mirror leaves an unpoisoned hmm.
 */
void hmm_mirror_unregister(struct hmm_mirror *mirror)
{
	struct hmm *hmm = mirror->hmm;
	struct mm_struct *mm;
	bool empty;

	if (!hmm)
		return;

	down_write(&hmm->mirrors_sem);
	/* A no-op if release unlinked it already. */
	list_del_init(&mirror->list);
	empty = list_empty(&hmm->mirrors);
	mirror->hmm = NULL;
	mm = hmm->mm;
	hmm->mm = NULL;
	up_write(&hmm->mirrors_sem);

	if (!empty || !mm)
		return;

	mmu_notifier_unregister_no_release(&hmm->mmu_notifier, mm);
	/*
	 * The seed clears mm->hmm only if it still points here, against a
	 * concurrent re-creation; in one task nothing can have replaced it.
	 */
	BUG_ON(mm->hmm != hmm);
	mm->hmm = NULL;
	hmm_retire(hmm, mm);
}

/* A present or device-private page, in the range's encoding (§2.7 rule 1). */
static uint64_t hmm_pfn_from_pte(const struct hmm_range *range,
				 const struct cpu_pte *pte)
{
	uint64_t entry = (pte->pfn << range->pfn_shift) |
			 range->flags[HMM_PFN_VALID];

	if (pte->write)
		entry |= range->flags[HMM_PFN_WRITE];
	if (pte->kind == CPU_PTE_DEVICE_PRIVATE)
		entry |= range->flags[HMM_PFN_DEVICE_PRIVATE];
	return entry;
}

/* The entry the snapshot walk writes for @pte (§2.7 rules 1-2; RNG-1). */
static uint64_t hmm_pte_encode(const struct hmm_range *range,
			       const struct cpu_pte *pte)
{
	switch (pte->kind) {
	case CPU_PTE_PRESENT:
	case CPU_PTE_DEVICE_PRIVATE:
		return hmm_pfn_from_pte(range, pte);
	case CPU_PTE_POISON:
		return range->values[HMM_PFN_ERROR];
	case CPU_PTE_NONE:
	case CPU_PTE_SWAP:
	case CPU_PTE_MIGRATION:	/* snapshot mode does not wait for it */
		break;
	}
	return range->values[HMM_PFN_NONE];
}

/*
 * The snapshot walk (§3.7 rule 8). A poisoned entry is a hard error that ends
 * the walk, and hmm_vma_get_pfns() ignores the walk's result, so the entries
 * after it keep the caller's values. Returns 0, or the error of a failed read.
 */
static int hmm_vma_walk(struct hmm_range *range)
{
	struct mm_struct *mm = range->vma->vm_mm;
	unsigned long npages = hmm_range_npages(range);
	struct cpu_pte ptes[HMM_WALK_BATCH];
	unsigned long i, j, count;
	int ret;

	for (i = 0; i < npages; i += count) {
		unsigned long addr = range->start + (i << PAGE_SHIFT);

		count = umin(npages - i, HMM_WALK_BATCH);
		ret = mm->read_ptes(mm, addr, addr + (count << PAGE_SHIFT),
				    ptes);
		if (ret)
			return ret;
		for (j = 0; j < count; j++) {
			range->pfns[i + j] = hmm_pte_encode(range, &ptes[j]);
			if (ptes[j].kind == CPU_PTE_POISON)
				return 0;
		}
	}
	return 0;
}

/*
 * hmm_vma_get_pfns - snapshot @range and register it, valid (§3.7)
 *
 * Returns 0, and the caller must then call hmm_vma_range_done() once; or
 * -EINVAL for bounds outside the vma (pfns untouched), -EINVAL for a hugetlb
 * or special vma (every entry values[SPECIAL]), -EPERM for a vma without read
 * permission (every entry values[NONE]), -ENOMEM; nothing is registered then
 * (RNG-1, RNG-2). No check that start < end (rule 2): an empty range inside
 * the vma is registered.
 */
int hmm_vma_get_pfns(struct hmm_range *range)
{
	struct vm_area_struct *vma = range->vma;
	struct hmm *hmm;
	int ret;

	if (range->start < vma->vm_start || range->start >= vma->vm_end)
		return -EINVAL;
	if (range->end < vma->vm_start || range->end > vma->vm_end)
		return -EINVAL;

	hmm = hmm_register(vma->vm_mm);
	if (IS_ERR(hmm))
		return PTR_ERR(hmm);
	/*
	 * The seed's -EINVAL for an hmm whose notifier ops are NULL ("caller
	 * must have registered a mirror", rule 4) cannot happen in one task:
	 * hmm_register() sets them before it returns. A snapshot without any
	 * mirror succeeds.
	 */

	if ((vma->vm_flags & VM_HUGETLB) || (vma->vm_flags & VM_SPECIAL)) {
		hmm_pfns_fill(range, range->values[HMM_PFN_SPECIAL]);
		return -EINVAL;
	}
	if (!(vma->vm_flags & VM_READ)) {
		hmm_pfns_fill(range, range->values[HMM_PFN_NONE]);
		return -EPERM;
	}

	/* Registered before the walk, so an invalidation during it counts. */
	spin_lock(&hmm->lock);
	range->valid = true;
	list_add(&range->list, &hmm->ranges);
	spin_unlock(&hmm->lock);

	ret = hmm_vma_walk(range);
	if (ret) {
		/* As if it had never been registered. */
		spin_lock(&hmm->lock);
		list_del_init(&range->list);
		range->valid = false;
		spin_unlock(&hmm->lock);
	}
	return ret;
}

/*
 * hmm_pte_need_fault - does the request @request make the faulting walk fault
 * the page of @pte, and for write (*@write)? (§3.8 rule 4)
 *
 * An entry without flags[VALID] asks for nothing. A device-private page is
 * faulted back only if the entry has flags[DEVICE_PRIVATE]. Any other page
 * is faulted if nothing is mapped there, or if the entry has flags[WRITE]
 * and the page is mapped read-only; for write if the entry has flags[WRITE]
 * and the page is not mapped writable.
 */
static bool hmm_pte_need_fault(const struct hmm_range *range,
			       uint64_t request, const struct cpu_pte *pte,
			       bool *write)
{
	bool wants_write = (request & range->flags[HMM_PFN_WRITE]) != 0;

	*write = false;
	if (!(request & range->flags[HMM_PFN_VALID]))
		return false;
	if (pte->kind == CPU_PTE_DEVICE_PRIVATE) {
		if (!(request & range->flags[HMM_PFN_DEVICE_PRIVATE]))
			return false;
		*write = wants_write;
		return true;
	}
	if (pte->kind != CPU_PTE_PRESENT) {
		*write = wants_write;
		return true;
	}
	*write = wants_write && !pte->write;
	return *write;
}

/*
 * One page of the faulting walk: entry @index, whose CPU entry is @pte.
 * Returns 0 to go on to the next page; -EAGAIN after a fault that succeeded
 * or a migration waited for, to start again at this page (whose entry is then
 * the request: values[NONE] after either, so it is not faulted twice); or
 * the error that ends the call (§3.8 rules 4-6).
 */
static int hmm_vma_fault_page(struct hmm_range *range, unsigned long index,
			      const struct cpu_pte *pte, bool block)
{
	struct mm_struct *mm = range->vma->vm_mm;
	unsigned long addr = range->start + (index << PAGE_SHIFT);
	uint64_t *entry = &range->pfns[index];
	unsigned int flags = FAULT_FLAG_ALLOW_RETRY;
	bool write;
	int answer;

	/* Poison is no swap, device or migration entry: a hard error (§2.7). */
	if (pte->kind == CPU_PTE_POISON) {
		*entry = range->values[HMM_PFN_ERROR];
		return -EFAULT;
	}
	if (!hmm_pte_need_fault(range, *entry, pte, &write)) {
		*entry = hmm_pte_encode(range, pte);
		return 0;
	}
	/* The request is read once: walked again, the page asks for nothing. */
	*entry = range->values[HMM_PFN_NONE];
	if (pte->kind == CPU_PTE_MIGRATION) {
		mm->migration_entry_wait(mm, addr);
		return -EAGAIN;
	}

	/*
	 * The seed allows a retry whatever @block says (bug #15, fixed in
	 * 5.3): a handler that must wait drops mmap_sem and answers
	 * VM_FAULT_RETRY even when the caller could have waited.
	 */
	if (write)
		flags |= FAULT_FLAG_WRITE;
	if (!block)
		flags |= FAULT_FLAG_RETRY_NOWAIT;
	answer = mm->handle_mm_fault(mm, addr, flags);
	if (answer & VM_FAULT_RETRY)
		return -EBUSY;
	if (answer & VM_FAULT_ERROR) {
		*entry = range->values[HMM_PFN_ERROR];
		return -EFAULT;
	}
	return -EAGAIN;
}

/*
 * One pass of the faulting walk, from entry *@pos to the end. Returns 0 at
 * the end, or what hmm_vma_fault_page() returned, with *@pos at its page.
 * The CPU entries are read a batch at a time, and again after each fault.
 */
static int hmm_vma_fault_walk(struct hmm_range *range, bool block,
			      unsigned long *pos)
{
	struct mm_struct *mm = range->vma->vm_mm;
	unsigned long npages = hmm_range_npages(range);
	struct cpu_pte ptes[HMM_WALK_BATCH];
	unsigned long i, j, count;
	int ret;

	for (i = *pos; i < npages; i += count) {
		unsigned long addr = range->start + (i << PAGE_SHIFT);

		count = umin(npages - i, HMM_WALK_BATCH);
		*pos = i;
		ret = mm->read_ptes(mm, addr, addr + (count << PAGE_SHIFT),
				    ptes);
		if (ret)
			return ret;
		for (j = 0; j < count; j++) {
			*pos = i + j;
			ret = hmm_vma_fault_page(range, i + j, &ptes[j], block);
			if (ret)
				return ret;
		}
	}
	*pos = npages;
	return 0;
}

/*
 * hmm_vma_fault - fault in what @range's entries ask for, snapshot it and
 * register it, valid (§3.8)
 *
 * The caller fills pfns with requests in the range's encoding: flags[VALID]
 * asks for the page, flags[WRITE] for it writable, flags[DEVICE_PRIVATE] for
 * a device-private page back. Returns 0, and the caller must then call
 * hmm_vma_range_done() once; -EINVAL for bounds outside the vma (pfns
 * untouched); -ENOMEM (every entry values[NONE]); -EINVAL for a hugetlb or
 * special vma (values[SPECIAL]); -EPERM without read permission
 * (values[NONE]); -EBUSY if the fault handler dropped mmap_sem; -EFAULT for
 * a fault that failed or a poisoned entry. After an error the entries from
 * the failing page on are values[NONE] and nothing is registered.
 */
int hmm_vma_fault(struct hmm_range *range, bool block)
{
	struct vm_area_struct *vma = range->vma;
	unsigned long i, pos = 0;
	struct hmm *hmm;
	int ret;

	if (range->start < vma->vm_start || range->start >= vma->vm_end)
		return -EINVAL;
	if (range->end < vma->vm_start || range->end > vma->vm_end)
		return -EINVAL;
	/* The error path's hmm_vma_range_done() would BUG() on it. */
	if (range->end <= range->start)
		return -HMM_E_FAULT_EMPTY;
	/* A second list_add() would corrupt hmm->ranges. */
	if (!list_empty(&range->list))
		return -HMM_E_RANGE_LISTED;

	hmm = hmm_register(vma->vm_mm);
	if (IS_ERR(hmm)) {
		if (PTR_ERR(hmm) == -ENOMEM)
			hmm_pfns_fill(range, range->values[HMM_PFN_NONE]);
		return PTR_ERR(hmm);
	}
	if ((vma->vm_flags & VM_HUGETLB) || (vma->vm_flags & VM_SPECIAL)) {
		hmm_pfns_fill(range, range->values[HMM_PFN_SPECIAL]);
		return -EINVAL;
	}
	if (!(vma->vm_flags & VM_READ)) {
		hmm_pfns_fill(range, range->values[HMM_PFN_NONE]);
		return -EPERM;
	}

	spin_lock(&hmm->lock);
	range->valid = true;
	list_add(&range->list, &hmm->ranges);
	spin_unlock(&hmm->lock);

	do {
		ret = hmm_vma_fault_walk(range, block, &pos);
	} while (ret == -EAGAIN);
	if (!ret)
		return 0;

	for (i = pos; i < hmm_range_npages(range); i++)
		range->pfns[i] = range->values[HMM_PFN_NONE];
	/* Rule 6: never left registered after an error; valid stays as is. */
	hmm_vma_range_done(range);
	return ret;
}

/*
 * hmm_vma_range_done - stop tracking @range; was it valid throughout? (§3.9)
 *
 * Returns range->valid (RNG-7). Refuses, changing nothing, a range with
 * end <= start, where the seed BUG()s (rule 1), and a range on no list (never
 * registered, a failed snapshot, or done already), whose unlink corrupts the
 * seed's list (rule 5; RNG-9). The seed's list_del() leaves the entry
 * poisoned; list_del_init() leaves it telling that it is on no list.
 */
int hmm_vma_range_done(struct hmm_range *range)
{
	struct hmm *hmm;

	if (range->end <= range->start)
		return -HMM_E_RANGE_EMPTY;
	if (list_empty(&range->list))
		return -HMM_E_RANGE_UNLISTED;

	/*
	 * Rule 2: this re-creates an hmm, and puts a notifier on the mm again,
	 * if the last mirror was unregistered meanwhile (bug history #11).
	 */
	hmm = hmm_register(range->vma->vm_mm);
	if (IS_ERR(hmm)) {
		if (PTR_ERR(hmm) != -ENOMEM)
			return PTR_ERR(hmm);
		/* Rule 3: raw 0 everywhere, and the range stays listed. */
		hmm_pfns_fill(range, 0);
		return 0;
	}

	/* Unlinked from whichever list holds it, under this hmm's lock. */
	spin_lock(&hmm->lock);
	list_del_init(&range->list);
	spin_unlock(&hmm->lock);
	return range->valid;
}

/*
 * The range pass (§3.5 rule 2; RNG-3..5, END-2, INV-9). A range is skipped
 * only if the update ends before it or starts at or after its end, so an
 * update that ends exactly where a range starts marks it invalid and clears
 * nothing: the lower boundary's false positive (RNG-5).
 */
static void hmm_invalidate_ranges(struct hmm *hmm,
				  const struct hmm_update *update)
{
	struct hmm_range *range;

	spin_lock(&hmm->lock);
	list_for_each_entry(range, &hmm->ranges, list) {
		unsigned long first, npages, i, idx;

		if (update->end < range->start || update->start >= range->end)
			continue;

		range->valid = false;
		first = umax(update->start, range->start);
		idx = (first - range->start) >> PAGE_SHIFT;
		npages = (umin(range->end, update->end) - first) >> PAGE_SHIFT;
#ifdef HMM_BUG_NO_RANGE_CLEAR
		npages = 0;	/* BUG: the overlap keeps its entries */
#endif
		/* Raw 0, not values[NONE]: the seed zeroes the memory. */
		for (i = 0; i < npages; i++)
			range->pfns[idx + i] = 0;
	}
	spin_unlock(&hmm->lock);
}

/*
 * The mirror pass (§3.5 rules 4-7): newest first, no filtering. When not
 * blockable, the first exact -EAGAIN releases the semaphore and is the
 * result; the older mirrors are not called (INV-4, INV-7); every other value
 * is ignored (INV-8), and every value when blockable (INV-2).
 */
static int hmm_invalidate_mirrors(struct hmm *hmm,
				  const struct hmm_update *update)
{
	struct hmm_mirror *mirror;

#ifdef HMM_SEED_LOCKING
	down_read(&hmm->mirrors_sem);
#else
	if (update->blockable)
		down_read(&hmm->mirrors_sem);
	else if (!down_read_trylock(&hmm->mirrors_sem))
		return -EAGAIN;
#endif

	list_for_each_entry(mirror, &hmm->mirrors, list) {
		int ret = mirror->ops->sync_cpu_device_pagetables(mirror,
								  update);

#ifdef HMM_BUG_EAGAIN_IGNORED
		ret = 0;	/* BUG: the mirror's -EAGAIN is dropped */
#endif
		if (!update->blockable && ret == -EAGAIN) {
			up_read(&hmm->mirrors_sem);
			return -EAGAIN;
		}
	}
	up_read(&hmm->mirrors_sem);
	return 0;
}

/*
 * hmm_invalidate_range - the core routine (§3.5): the range pass, then, for
 * the device (start only), the mirror pass. The spinlock and the semaphore
 * are never held together (rule 1). Ranges stay invalid whatever the mirror
 * pass returns (rule 8).
 */
static int hmm_invalidate_range(struct hmm *hmm, bool device,
				const struct hmm_update *update)
{
	hmm_invalidate_ranges(hmm, update);
	if (!device)
		return 0;
	return hmm_invalidate_mirrors(hmm, update);
}

/*
 * The notifier ops find their hmm through mm->hmm, as the seed's do; while
 * HMM's notifier is on the chain that is the hmm that embeds it (§3.6).
 */
static struct hmm *hmm_from_notifier(struct mmu_notifier *mn,
				     struct mm_struct *mm)
{
	struct hmm *hmm = mm->hmm;

	BUG_ON(!hmm || &hmm->mmu_notifier != mn);
	return hmm;
}

/*
 * hmm_release - the mm is being torn down (§3.4; REL-1, REL-2)
 *
 * The head of the list is taken again each time round, so a release op may
 * unregister mirrors. mirror->hmm, hmm->mm and every range are left alone:
 * a range registered now is never invalidated again (REL-3).
 */
static void hmm_release(struct mmu_notifier *mn, struct mm_struct *mm)
{
	struct hmm *hmm = hmm_from_notifier(mn, mm);

	down_write(&hmm->mirrors_sem);
	while (!list_empty(&hmm->mirrors)) {
		struct hmm_mirror *mirror;

		mirror = list_first_entry(&hmm->mirrors, struct hmm_mirror,
					  list);
		list_del_init(&mirror->list);
		if (mirror->ops->release) {
			/* So that the driver may wait for work that needs it. */
			up_write(&hmm->mirrors_sem);
			mirror->ops->release(mirror);
			down_write(&hmm->mirrors_sem);
		}
	}
	up_write(&hmm->mirrors_sem);
}

/* hmm_invalidate_range_start (§3.6 rule 1): mirrors hear of it here, once. */
static int hmm_invalidate_range_start(struct mmu_notifier *mn,
				      struct mm_struct *mm,
				      unsigned long start, unsigned long end,
				      bool blockable)
{
	struct hmm_update update = {
		.start = start,
		.end = end,
		.event = HMM_UPDATE_INVALIDATE,
		.blockable = blockable,
	};

	return hmm_invalidate_range(hmm_from_notifier(mn, mm), true, &update);
}

/*
 * hmm_invalidate_range_end (§3.6 rule 2): the range pass again, which also
 * catches a snapshot taken between start and end (END-2); no mirror is
 * called (END-1). It takes only the spinlock, so it is safe after a
 * non-blockable start too (§3.6 rule 4).
 */
static void hmm_invalidate_range_end(struct mmu_notifier *mn,
				     struct mm_struct *mm,
				     unsigned long start, unsigned long end)
{
	struct hmm_update update = {
		.start = start,
		.end = end,
		.event = HMM_UPDATE_INVALIDATE,
		.blockable = true,	/* as the seed sets it; nothing reads it */
	};

	hmm_invalidate_range(hmm_from_notifier(mn, mm), false, &update);
}

static const struct mmu_notifier_ops hmm_mmu_notifier_ops = {
	.release = hmm_release,
	.invalidate_range_start = hmm_invalidate_range_start,
	.invalidate_range_end = hmm_invalidate_range_end,
};
