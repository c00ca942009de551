/* SPDX-License-Identifier: MIT */
/*
 * hmm.h - the HMM mirror API of the seed: include/linux/hmm.h after
 * "mm/hmm: proper support for blockable mmu_notifier" (mainline 4.20).
 *
 * A device driver embeds a struct hmm_mirror, registers it on an mm, and from
 * then on hears of every CPU page-table invalidation of that mm through its
 * sync_cpu_device_pagetables() op. To read the CPU page table it snapshots a
 * range with hmm_vma_get_pfns() and asks hmm_vma_range_done() whether the
 * snapshot is still valid. The rules each piece states are cited from
 * shared/kernel/kernel-semantics.md (§) and the rule catalogue (REG-, INV-,
 * END-, RNG-, REL-).
 */
#ifndef HMM_CCORE_HMM_H
#define HMM_CCORE_HMM_H

#include "mm.h"

/* Indexes into range->flags (§2.6): the bit the driver uses for each. */
enum hmm_pfn_flag_e {
	HMM_PFN_VALID,
	HMM_PFN_WRITE,
	HMM_PFN_DEVICE_PRIVATE,
	HMM_PFN_FLAG_MAX
};

/* Indexes into range->values (§2.6): the whole entry for each case. */
enum hmm_pfn_value_e {
	HMM_PFN_ERROR,
	HMM_PFN_NONE,
	HMM_PFN_SPECIAL,
	HMM_PFN_VALUE_MAX
};

/*
 * struct hmm_range - a snapshot of [start, end) of one vma (§2.6)
 *
 * The caller fills in every field but valid, list with INIT_LIST_HEAD(),
 * end >= start (the seed does not check), and pfns with one entry a page.
 */
struct hmm_range {
	struct vm_area_struct *vma;
	struct list_head list;		/* on hmm->ranges while registered */
	unsigned long start;
	unsigned long end;
	uint64_t *pfns;
	const uint64_t *flags;
	const uint64_t *values;
	unsigned int pfn_shift;		/* below 64 */
	bool valid;
};

/* The one event of the seed (§2.4). */
enum hmm_update_event {
	HMM_UPDATE_INVALIDATE,
};

/* struct hmm_update - what a mirror is asked to do (§2.5) */
struct hmm_update {
	unsigned long start;
	unsigned long end;
	enum hmm_update_event event;
	bool blockable;			/* may the callback sleep? */
};

struct hmm_mirror;

/* struct hmm_mirror_ops - what a driver implements (§2.3, §8) */
struct hmm_mirror_ops {
	/* Optional: the mm is going away; drop every reference to @mirror. */
	void (*release)(struct hmm_mirror *mirror);
	/*
	 * Invalidate [update->start, update->end) in the device page table
	 * before returning. Return 0, or -EAGAIN if update->blockable is false
	 * and the driver would have to sleep (then do nothing that sleeps).
	 */
	int (*sync_cpu_device_pagetables)(struct hmm_mirror *mirror,
					  const struct hmm_update *update);
};

/* struct hmm_mirror - a driver's registration on one mm (§2.2) */
struct hmm_mirror {
	struct hmm *hmm;		/* set by register, cleared by unregister */
	const struct hmm_mirror_ops *ops;
	struct list_head list;		/* on hmm->mirrors while registered */
};

/*
 * The core's refusals. Where the seed would never return, or would BUG() or
 * corrupt its lists because its caller broke the documented contract, this
 * core returns one of these instead, negated like an errno, having changed
 * nothing. They lie above every errno the kernel defines and below MAX_ERRNO,
 * so ERR_PTR() carries them and no driver error can pass for one.
 */
#define HMM_E_FIRST		4000
#define HMM_E_LIVELOCK		4000	/* register would retry for ever */
#define HMM_E_RANGE_EMPTY	4001	/* range_done with end <= start */
#define HMM_E_RANGE_UNLISTED	4002	/* range_done on a range on no list */
#define HMM_E_MM_EXITED		4003	/* a struct hmm wanted on an exited mm */
#define HMM_E_RANGE_LISTED	4004	/* a fault of a range still registered */
#define HMM_E_FAULT_EMPTY	4005	/* a fault with end <= start */

int hmm_mirror_register(struct hmm_mirror *mirror, struct mm_struct *mm);
void hmm_mirror_unregister(struct hmm_mirror *mirror);

int hmm_vma_get_pfns(struct hmm_range *range);
/*
 * Fault in what @range's entries ask for, then snapshot and register it as
 * hmm_vma_get_pfns() does; nothing is registered after an error (§3.8).
 */
int hmm_vma_fault(struct hmm_range *range, bool block);
/* 1 if the snapshot stayed valid, 0 if not, or a negative refusal. */
int hmm_vma_range_done(struct hmm_range *range);

void hmm_mm_destroy(struct mm_struct *mm);

#endif /* HMM_CCORE_HMM_H */
