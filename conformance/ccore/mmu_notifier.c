// SPDX-License-Identifier: MIT
/*
 * mmu_notifier.c - the notifier chain of an mm, as 4.19/4.20 run it
 * (kernel-semantics.md §5).
 *
 * The kernel walks the chain under SRCU so that notifiers may come and go
 * while it runs. Here the chain changes only from the calls below, never from
 * inside a notifier op, so a plain walk is enough.
 */
#include "locks.h"
#include "mm.h"

/* __mmu_notifier_register (§5.4): at the head, so the newest is called first. */
void mmu_notifier_register(struct mmu_notifier *mn, struct mm_struct *mm)
{
	list_add(&mn->list, &mm->mmu_notifiers);
}

/*
 * Like hlist_del_init_rcu(): a no-op for a notifier that release unlinked.
 * The kernel also drops here the reference on @mm that registration took;
 * nothing here counts references to an mm.
 */
void mmu_notifier_unregister_no_release(struct mmu_notifier *mn,
					struct mm_struct *mm)
{
	list_del_init(&mn->list);
}

/*
 * __mmu_notifier_release (§5.4), from exit_mmap: every release op, then every
 * notifier off the chain. No start or end reaches them afterwards, which is
 * why a range registered at release stays as it is (§3.4 rule 6, REL-3).
 */
void mmu_notifier_release(struct mm_struct *mm)
{
	struct mmu_notifier *mn, *next;

	list_for_each_entry(mn, &mm->mmu_notifiers, list)
		mn->ops->release(mn, mm);
	list_for_each_entry_safe(mn, next, &mm->mmu_notifiers, list)
		list_del_init(&mn->list);
	mm->exited = true;
}

/*
 * __mmu_notifier_invalidate_range_start of 93065ac753e4 (§5.1): every
 * notifier is called, even after one failed, and the last error is the
 * result (MN-1). A non-blockable start runs each op inside a non-block
 * section, where the lock shims count any sleeping primitive ([MNE]).
 */
int mmu_notifier_invalidate_range_start(struct mm_struct *mm,
					unsigned long start, unsigned long end,
					bool blockable)
{
	struct mmu_notifier *mn;
	int result = 0;

	list_for_each_entry(mn, &mm->mmu_notifiers, list) {
		int ret;

		if (!blockable)
			non_block_start();
		ret = mn->ops->invalidate_range_start(mn, mm, start, end,
						      blockable);
		if (!blockable)
			non_block_end();
		if (ret)
			result = ret;
	}
	return result;
}

/* __mmu_notifier_invalidate_range_end (§5.2): every end op, no result. */
void mmu_notifier_invalidate_range_end(struct mm_struct *mm,
				       unsigned long start, unsigned long end)
{
	struct mmu_notifier *mn;

	list_for_each_entry(mn, &mm->mmu_notifiers, list)
		mn->ops->invalidate_range_end(mn, mm, start, end);
}
