/* SPDX-License-Identifier: MIT */
/*
 * locks.h - the seed's two kinds of lock, for a core that runs in one task.
 *
 * struct hmm guards its ranges with a spinlock and its mirrors with a
 * read/write semaphore (kernel-semantics.md §2.1). This core is driven by one
 * task, so nobody else ever holds a lock it wants: an acquisition that finds
 * its lock taken would wait for ever, on itself, and BUG()s instead.
 *
 * What the shims are for is the one locking property the rules care about: a
 * non-blockable invalidation must not sleep (§7 rule 1, DRV-1). The
 * mmu-notifier chain brackets a non-blockable start with non_block_start()
 * and non_block_end(), the names later kernels gave that section ([MNE]).
 * The shims count every call of a sleeping primitive (down_read(),
 * down_write()), and separately those made inside such a section; they count
 * the try-locks made inside one too, so that a zero can be told from a
 * section that was never entered. lock_stats_read() hands the counts out.
 */
#ifndef HMM_CCORE_LOCKS_H
#define HMM_CCORE_LOCKS_H

#include "kernel.h"

typedef struct {
	bool locked;
} spinlock_t;

struct rw_semaphore {
	unsigned int readers;
	bool writer;
};

struct lock_stats {
	unsigned long sleeping;			/* down_read(), down_write() */
	unsigned long sleeping_in_non_block;	/* ... inside a non-block section */
	unsigned long trylocks_in_non_block;	/* down_read_trylock() inside one */
	unsigned long non_block_sections;	/* non_block_start() calls */
};

void spin_lock_init(spinlock_t *lock);
void spin_lock(spinlock_t *lock);
void spin_unlock(spinlock_t *lock);

void init_rwsem(struct rw_semaphore *sem);
void down_read(struct rw_semaphore *sem);
bool down_read_trylock(struct rw_semaphore *sem);
void up_read(struct rw_semaphore *sem);
void down_write(struct rw_semaphore *sem);
void up_write(struct rw_semaphore *sem);

void non_block_start(void);
void non_block_end(void);

void lock_stats_read(struct lock_stats *stats);

#endif /* HMM_CCORE_LOCKS_H */
