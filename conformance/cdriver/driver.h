/* SPDX-License-Identifier: MIT */
/*
 * driver.h - a reference mirror driver in C, as a driver candidate.
 *
 * The driver half of the seed's HMM protocol (docs/spec.md §8, DRV-1..DRV-7),
 * in the shape of hmm_ref's ReferenceDriver (hmm_ref/_driver.py): a device
 * page table, a driver lock D (a mutex, or with HMM_DRV_RWSEM a read/write
 * semaphore) and a spinlock pt_lock, a fault path in four steps, the mirror
 * callback and release. Each function below is one method of the harness's
 * conformance.driver.DriverCandidate; the host (the Python adapter, or the
 * wire server) provides the kernel around it (shims.h).
 *
 * Every function returns 0 or a value, or a negative refusal DRV_E_*: the
 * harness asked for something it may not (nothing changed), or, for
 * DRV_E_ABANDONED, a call to the host failed and the request was abandoned
 * at that point; the host knows why.
 */
#ifndef HMM_CDRIVER_DRIVER_H
#define HMM_CDRIVER_DRIVER_H

#include "shims.h"

/* The steps of a device fault, in order; DMIRROR_DONE once it finished. */
enum dmirror_step {
	DMIRROR_SNAPSHOT,
	DMIRROR_LOCK,
	DMIRROR_CHECK,
	DMIRROR_UNLOCK,
	DMIRROR_DONE,
};

/* One vma of the case's mm. */
struct dmirror_vma {
	unsigned long start;
	unsigned long end;
};

/* The encoding the driver asks HMM for in this case (hmm_range's fields). */
struct dmirror_encoding {
	uint64_t flags[HMM_PFN_FLAG_MAX];
	uint64_t values[HMM_PFN_VALUE_MAX];
	unsigned int pfn_shift;
};

/* One device page-table entry. */
struct dmirror_entry {
	unsigned long addr;
	uint64_t pfn;
	bool write;
};

/* Where a fault is: its next step (DMIRROR_DONE once finished) and result. */
struct dmirror_fault_view {
	enum dmirror_step next;
	int result;
};

/* Refusals; the codes are above every errno, as ccore's are. */
#define DRV_E_FIRST		5000
#define DRV_E_ABANDONED		5000	/* a host call failed: see the host */
#define DRV_E_NO_FAULT		5001	/* no fault by that number */
#define DRV_E_FINISHED		5002	/* a step of a fault that finished */
#define DRV_E_UNALIGNED		5003	/* a fault span not page aligned */
#define DRV_E_EMPTY		5004	/* a fault span that is empty */

struct dmirror;

struct dmirror *dmirror_new(const struct drv_host_ops *ops, void *host);
void dmirror_free(struct dmirror *d);

/* The build: "dmirror-c", with its switches: "dmirror-c+rwsem+sleep". */
const char *dmirror_build_name(void);
/* The driver's name, which names its locks: "dmirror-mutex". */
const char *dmirror_name(void);
/* The name of D: "dmirror-mutex.lock". */
const char *dmirror_lock_name(void);
/* What a refusal means, in words. */
const char *dmirror_strerror(int refusal);

int dmirror_begin(struct dmirror *d, const struct dmirror_vma *vmas,
		  size_t nr_vmas, const struct dmirror_encoding *encoding);
/* Forget the case, as the next begin would. */
void dmirror_end(struct dmirror *d);

/* sync_cpu_device_pagetables(): 0 with *@reply set, or a refusal. */
int dmirror_sync(struct dmirror *d, unsigned long start, unsigned long end,
		 bool blockable, int *reply);
int dmirror_release(struct dmirror *d);

int dmirror_start_fault(struct dmirror *d, int fault, unsigned long start,
			unsigned long end);
/* Take the next step of @fault: 0 with *@taken set, or a refusal. */
int dmirror_step_fault(struct dmirror *d, int fault, enum dmirror_step *taken);
int dmirror_fault_view(struct dmirror *d, int fault,
		       struct dmirror_fault_view *view);

/* Would that wait for a lock now? 1 or 0, or a refusal. */
int dmirror_fault_would_block(struct dmirror *d, int fault);
int dmirror_invalidation_would_block(struct dmirror *d, bool blockable);
int dmirror_release_would_block(struct dmirror *d);

/*
 * The entries of the driver's range @range (hmm_range.pfns, its @npages in
 * *@npages), or NULL if it has none by that number. HMM writes into them: an
 * invalidation's range pass clears what it covers in every registered range
 * (kernel-semantics §3.5), and the host, which runs HMM, writes that here.
 */
uint64_t *dmirror_range_pfns(struct dmirror *d, int range, size_t *npages);

/*
 * The device page table, in address order: its number of entries, and in
 * *@entries the array, valid until the next call that changes the driver.
 */
size_t dmirror_device_page_table(struct dmirror *d,
				 const struct dmirror_entry **entries);

/* The allocator of the driver and the server: no memory stops the program. */
void *xcalloc(size_t n, size_t size);

#endif /* HMM_CDRIVER_DRIVER_H */
