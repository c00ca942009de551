/* SPDX-License-Identifier: MIT */
/*
 * shims.h - the kernel around the mirror driver, as the harness provides it.
 *
 * The driver (driver.c) is written against the kernel's own names: a struct
 * mutex or struct rw_semaphore for its driver lock, a spinlock_t, struct
 * hmm_range with hmm_vma_get_pfns() and hmm_vma_range_done(), find_vma(). In
 * this build none of them is the kernel's: the harness owns the locks' state,
 * the mm and the HMM core (docs/driver-side.md, "Who owns what"), and every
 * call here is a call to it, through the host operations below: in process
 * the Python adapter (conformance/cdriver/_candidate.py), over the wire the
 * server (server.c) and the harness behind it.
 *
 * A lock here keeps no state of its own, only its name: mutex_lock() asks the
 * harness to take the harness's lock of that name on behalf of the task that
 * runs (current), and the harness answers. When it cannot (a blocking
 * primitive found its lock held, a misuse), the task cannot go on: the shim
 * unwinds with longjmp() to the entry point of the request in progress
 * (drv_enter() in driver.c), which returns DRV_E_ABANDONED; the host knows
 * why and says so to its caller. Nothing after the failed call runs, as
 * nothing after a raise does in a Python driver.
 */
#ifndef HMM_CDRIVER_SHIMS_H
#define HMM_CDRIVER_SHIMS_H

#include <setjmp.h>

#include "kernel.h"

/* What the harness does for the driver; @host is the host's own pointer. */
struct drv_host_ops {
	/*
	 * The lock primitive @primitive ("mutex_lock", "spin_trylock", ...) on
	 * the harness's lock @lock, by @owner: 0 when done, or for a try-lock
	 * 1 (taken) or 0 (busy); DRV_HOST_FAILED when it could not be done.
	 */
	int (*lock)(void *host, const char *primitive, const char *lock,
		    const char *owner);
	/*
	 * hmm_vma_get_pfns() of [start, end) into the range the host knows as
	 * @range: *@ret is its result and, when that is 0, the @npages entries
	 * are in @pfns. 0, or DRV_HOST_FAILED.
	 */
	int (*get_pfns)(void *host, int range, unsigned long start,
			unsigned long end, uint64_t *pfns, size_t npages,
			int *ret);
	/* hmm_vma_range_done() of range @range: 1 or 0, or DRV_HOST_FAILED. */
	int (*range_done)(void *host, int range);
};

#define DRV_HOST_FAILED		(-1)

/*
 * The kernel of one driver instance: the harness, the request in progress
 * (where to unwind to) and the task it runs for (current), whose name is the
 * owner of every lock call it makes.
 */
struct drv_env {
	struct drv_host_ops ops;
	void *host;
	jmp_buf *unwind;
	const char *current;
};

/* Unwind to the entry point of the request in progress; see drv_enter(). */
_Noreturn void drv_abandon(struct drv_env *env);

/* -- locks: a name and the kernel that owns its state ------------------------ */

struct mutex {
	const char *name;
	struct drv_env *env;
};

typedef struct {
	const char *name;
	struct drv_env *env;
} spinlock_t;

struct rw_semaphore {
	const char *name;
	struct drv_env *env;
};

void mutex_init(struct mutex *lock, struct drv_env *env, const char *name);
void mutex_lock(struct mutex *lock);
bool mutex_trylock(struct mutex *lock);
void mutex_unlock(struct mutex *lock);

void spin_lock_init(spinlock_t *lock, struct drv_env *env, const char *name);
void spin_lock(spinlock_t *lock);
void spin_unlock(spinlock_t *lock);

void init_rwsem(struct rw_semaphore *sem, struct drv_env *env,
		const char *name);
void down_read(struct rw_semaphore *sem);
void up_read(struct rw_semaphore *sem);
void down_write(struct rw_semaphore *sem);
bool down_write_trylock(struct rw_semaphore *sem);
void up_write(struct rw_semaphore *sem);

/* -- the address space, as far as a driver reads it ------------------------- */

struct vm_area_struct {
	unsigned long vm_start;
	unsigned long vm_end;
};

struct mm_struct {
	struct drv_env *env;
	struct vm_area_struct *vmas;	/* in address order */
	size_t nr_vmas;
};

/* The vma that holds @addr, or NULL. */
struct vm_area_struct *find_vma(struct mm_struct *mm, unsigned long addr);

/* -- HMM's snapshot API (4.18-4.20), in the driver's encoding --------------- */

enum hmm_pfn_flag_e {
	HMM_PFN_VALID,
	HMM_PFN_WRITE,
	HMM_PFN_DEVICE_PRIVATE,
	HMM_PFN_FLAG_MAX,
};

enum hmm_pfn_value_e {
	HMM_PFN_ERROR,
	HMM_PFN_NONE,
	HMM_PFN_SPECIAL,
	HMM_PFN_VALUE_MAX,
};

/*
 * A snapshot request: the driver's memory, as in the kernel. @id is the
 * harness's name for it; @pfns holds @npages entries.
 */
struct hmm_range {
	struct mm_struct *mm;
	int id;
	unsigned long start;
	unsigned long end;
	uint64_t *pfns;
	size_t npages;
	const uint64_t *flags;
	const uint64_t *values;
	unsigned int pfn_shift;
};

int hmm_vma_get_pfns(struct hmm_range *range);
bool hmm_vma_range_done(struct hmm_range *range);

/*
 * The page an entry names, or false (hmm_pfn_to_page() giving NULL): one of
 * the special values, or an entry without VALID (the seed's invalidation
 * writes raw 0). The pfn is the entry shifted right, unmasked, as the seed's
 * hmm_pfn_to_pfn() does.
 */
static inline bool hmm_pfn_to_pfn(const struct hmm_range *range,
				  uint64_t entry, uint64_t *pfn)
{
	if (entry == range->values[HMM_PFN_ERROR] ||
	    entry == range->values[HMM_PFN_NONE] ||
	    entry == range->values[HMM_PFN_SPECIAL] ||
	    !(entry & range->flags[HMM_PFN_VALID]))
		return false;
	*pfn = entry >> range->pfn_shift;
	return true;
}

#endif /* HMM_CDRIVER_SHIMS_H */
