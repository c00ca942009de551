/* SPDX-License-Identifier: MIT */
/*
 * mm.h - the address space HMM reads, and the mmu-notifier chain on it.
 *
 * The core never owns the CPU page table. An mm_struct carries a read_ptes()
 * callback, set by whoever made the mm, which fills in the entries of a span
 * of pages; HMM's page walk is its only caller. It carries the CPU's fault
 * handling the same way: handle_mm_fault() and migration_entry_wait(), which
 * hmm_vma_fault() calls (kernel-semantics.md §3.8) and which may change the
 * entries; read_ptes() then reads them as they are now.
 *
 * The notifier chain states kernel-semantics.md §5 for the one notifier HMM
 * puts on it (mmu_notifier.c): registration at the head, start calling every
 * notifier and returning the last error (MN-1), release calling every release
 * op and then unlinking every notifier, after which nothing reaches them.
 */
#ifndef HMM_CCORE_MM_H
#define HMM_CCORE_MM_H

#include "list.h"

/* What HMM's walk can tell of one CPU page-table entry. */
enum cpu_pte_kind {
	CPU_PTE_NONE,		/* pte_none(): nothing mapped */
	CPU_PTE_PRESENT,	/* a present page */
	CPU_PTE_DEVICE_PRIVATE,	/* a device-private page (a swap-type entry) */
	CPU_PTE_SWAP,		/* swapped out */
	CPU_PTE_MIGRATION,	/* under migration */
	CPU_PTE_POISON,		/* hardware poison, or another unknown entry */
};

struct cpu_pte {
	enum cpu_pte_kind kind;
	bool write;		/* present and device-private only */
	uint64_t pfn;		/* present and device-private only */
};

#define VM_READ		0x1UL
#define VM_WRITE	0x2UL
#define VM_HUGETLB	0x400000UL
/* Stands for the kernel's VM_IO | VM_DONTEXPAND | VM_PFNMAP | VM_MIXEDMAP. */
#define VM_SPECIAL	0x4000UL

struct mm_struct;

struct vm_area_struct {
	unsigned long vm_start;		/* inclusive */
	unsigned long vm_end;		/* exclusive */
	unsigned long vm_flags;
	struct mm_struct *vm_mm;
};

/* handle_mm_fault()'s flags, as 4.18 numbers them. */
#define FAULT_FLAG_WRITE	0x01
#define FAULT_FLAG_ALLOW_RETRY	0x04
#define FAULT_FLAG_RETRY_NOWAIT	0x08

/* The bits of its answer that HMM reads, as 4.18 numbers them. */
#define VM_FAULT_SIGBUS		0x0002
#define VM_FAULT_SIGSEGV	0x0040
#define VM_FAULT_RETRY		0x0400
/*
 * A failed fault. The kernel's VM_FAULT_ERROR has more bits (OOM, HWPOISON,
 * FALLBACK); these two are the failures the harness's fault handler answers,
 * and the ones hmm_ref reads (hmm_ref.VM_FAULT_ERROR).
 */
#define VM_FAULT_ERROR		(VM_FAULT_SIGBUS | VM_FAULT_SIGSEGV)

struct mmu_notifier;

/* Every notifier on this chain implements all three ops (HMM's does). */
struct mmu_notifier_ops {
	void (*release)(struct mmu_notifier *mn, struct mm_struct *mm);
	int (*invalidate_range_start)(struct mmu_notifier *mn,
				      struct mm_struct *mm,
				      unsigned long start, unsigned long end,
				      bool blockable);
	void (*invalidate_range_end)(struct mmu_notifier *mn,
				     struct mm_struct *mm,
				     unsigned long start, unsigned long end);
};

struct mmu_notifier {
	struct list_head list;		/* on mm->mmu_notifiers */
	const struct mmu_notifier_ops *ops;
};

struct hmm;

struct mm_struct {
	struct vm_area_struct *vmas;	/* in address order */
	size_t nr_vmas;
	/*
	 * Fill @ptes with the entries of the pages in [start, end), which lies
	 * inside one vma; 0, or a negative errno if they cannot be read.
	 */
	int (*read_ptes)(struct mm_struct *mm, unsigned long start,
			 unsigned long end, struct cpu_pte *ptes);
	/*
	 * The CPU's fault handler at the page of @addr, with FAULT_FLAG_*
	 * @flags: 0 (the page is mapped as asked) or VM_FAULT_* bits.
	 */
	int (*handle_mm_fault)(struct mm_struct *mm, unsigned long addr,
			       unsigned int flags);
	/* Wait until the migration of the page at @addr is over. */
	void (*migration_entry_wait)(struct mm_struct *mm, unsigned long addr);
	struct list_head mmu_notifiers;	/* newest first */
	bool exited;			/* mmu_notifier_release() ran */
	struct hmm *hmm;		/* mm->hmm, created by HMM on demand */
	struct list_head retired_hmms;	/* see hmm_mm_destroy() */
};

void mmu_notifier_register(struct mmu_notifier *mn, struct mm_struct *mm);
void mmu_notifier_unregister_no_release(struct mmu_notifier *mn,
					struct mm_struct *mm);
void mmu_notifier_release(struct mm_struct *mm);
int mmu_notifier_invalidate_range_start(struct mm_struct *mm,
					unsigned long start, unsigned long end,
					bool blockable);
void mmu_notifier_invalidate_range_end(struct mm_struct *mm,
				       unsigned long start, unsigned long end);

#endif /* HMM_CCORE_MM_H */
