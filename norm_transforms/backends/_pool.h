/*
 * The C kernels' thread pool: one job at a time, split into parts that the calling thread and
 * the pool's workers claim in turn. See _pool.c for why it exists and how it behaves.
 */
#ifndef NORM_TRANSFORMS_POOL_H
#define NORM_TRANSFORMS_POOL_H

#define PY_SSIZE_T_CLEAN
#include <Python.h>

/* The most threads one job uses (the caller included). */
#define POOL_MAX_THREADS 64

/* One part of a job: `part` in [0, parts), run by `thread` in [0, threads) (0: the caller), so
 * that a task can keep per-thread scratch or partial results. */
typedef void (*pool_task)(void *context, Py_ssize_t part, Py_ssize_t parts, int thread);

/* Runs task(context, part, parts) for every part on up to `threads` threads, the caller one of
 * them, and returns when all parts are done. Runs every part on the caller, in order, when
 * threads <= 1, when another job holds the pool (a second Python thread) or when no worker can
 * be started. Call it without the GIL. */
void pool_run(pool_task task, void *context, Py_ssize_t parts, int threads);

/* How many jobs in this process ran on more than one thread (tests read it). */
unsigned long pool_parallel_jobs(void);

/* A monotonic clock, in seconds. */
double pool_seconds(void);

/* How many threads the pool can run at most on this platform (1 where it has none). */
int pool_supported_threads(void);

/* Installs the fork handler (once per process, whatever the calls): a child process starts with
 * no workers (they do not survive fork) and a pool that is free. 0 on success. */
int pool_init(void);

#endif
