/*
 * A small thread pool for the C kernels (_kernels.c), on POSIX threads.
 *
 * Why not Python threads: a ThreadPoolExecutor split of the affine cost 80-100 us of dispatch
 * per call here (2-core Xeon), more than a 224x224 image takes; this pool hands a job to a
 * waiting worker through one condition variable (~10-30 us) and only jobs of a few hundred
 * microseconds or more use it (the threshold is in _kernels.c). Why not OpenMP: one more
 * runtime to ship in wheels, and its pool would be a third one beside torch's and OpenCV's.
 *
 * How: a job is a task and a number of parts; each thread (the caller is thread 0) owns a
 * contiguous run of them and, when done with its own, takes the last part left of the thread
 * with the most left, so a worker that wakes late or loses its core to another process slows
 * the job by at most a part. Which thread runs which part does not change any result: parts
 * write their own output ranges, and partial results are either exact in any order (min/max,
 * counts: per thread) or kept per part and combined in part order (sums).
 *
 * One job at a time: a second Python thread that calls a kernel while a job runs gets its parts
 * run on its own thread (no waiting, no deadlock). Workers are started on the first job that
 * wants them and then wait, blocked, for the next one; they hold no Python state and never take
 * the GIL. A child process after fork starts with none: threads do not survive fork, and a
 * worker caught inside a job would leave the pool's lock held in the child; the fork handler
 * holds that lock across fork and gives the child a fresh one.
 *
 * Windows builds have no pool (yet): every job runs on the caller.
 */
#include "_pool.h"

#if defined(_WIN32)

void pool_run(pool_task task, void *context, Py_ssize_t parts, int threads)
{
    (void)threads;
    for (Py_ssize_t part = 0; part < parts; part++)
        task(context, part, parts, 0);
}

int pool_supported_threads(void) { return 1; }

double pool_seconds(void) { return 0.0; } /* no pool, no runs of calls to detect */

unsigned long pool_parallel_jobs(void) { return 0; }

int pool_init(void) { return 0; }

#else

#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdint.h>
#include <time.h>

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t wake = PTHREAD_COND_INITIALIZER;     /* a job was published */
static pthread_cond_t finished = PTHREAD_COND_INITIALIZER; /* its last part is done */

/* All under `lock`. */
static int workers;          /* started in this process */
static int busy;             /* a job holds the pool */
static unsigned long job_id; /* counts jobs, so that a worker joins each one once */
static int job_threads;      /* threads of the current job: the caller (0), then workers 1.. */
static pool_task job_task;
static void *job_context;
static Py_ssize_t job_parts, parts_left;
/* Thread t's own parts, in order: [next_own[t], end_own[t]). */
static Py_ssize_t next_own[POOL_MAX_THREADS], end_own[POOL_MAX_THREADS];

/* The next part for `thread`: its own next one, else the last one left of the thread with
 * the most left (a worker that woke late or lost its core to another process), or -1. */
static Py_ssize_t claim_part(int thread)
{
    if (next_own[thread] < end_own[thread])
        return next_own[thread]++;
    int slowest = -1;
    Py_ssize_t most = 0;
    for (int other = 0; other < job_threads; other++)
        if (end_own[other] - next_own[other] > most) {
            most = end_own[other] - next_own[other];
            slowest = other;
        }
    return slowest < 0 ? -1 : --end_own[slowest];
}

/* Runs parts of the current job as `thread` until none is left; called and returns with `lock`
 * held. */
static void run_parts(int thread)
{
    Py_ssize_t part;
    while ((part = claim_part(thread)) >= 0) {
        pool_task task = job_task;
        void *context = job_context;
        Py_ssize_t parts = job_parts;
        pthread_mutex_unlock(&lock);
        task(context, part, parts, thread);
        pthread_mutex_lock(&lock);
        if (__atomic_sub_fetch(&parts_left, 1, __ATOMIC_RELEASE) == 0)
            pthread_cond_signal(&finished);
    }
}

typedef struct {
    int index;
    unsigned long first_job; /* the job it was started for */
} WorkerStart;

static WorkerStart starts[POOL_MAX_THREADS];

double pool_seconds(void)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (double)now.tv_sec + 1e-9 * (double)now.tv_nsec;
}

/* Why workers wait awake (spin) before they sleep: this VM's scheduler (like many) puts a
 * thread woken from sleep on the waker's core, where it preempts the caller instead of running
 * beside it: measured, a 2-part job whose worker slept ran its parts one after the other on one
 * core. A worker that spins stays on a core of its own, so back-to-back calls (the images of a
 * batch, a data loader's main loop) run in parallel; one idle for longer sleeps and costs
 * nothing. 1 ms, like OpenMP runtimes' spin before they block (libgomp's and Intel's are
 * longer); it yields its core now and then, to any other thread that wants it. */
#define WORKER_SPIN_SECONDS 1e-3

/* The caller waits awake for the workers' last parts only briefly: they usually end within
 * microseconds of its own (a condition-variable wake-up measured ~20 us here), and when they do
 * not, a worker has lost its core, possibly to the caller's spin: with another process busy on
 * one of the 2 cores, spinning for 1 ms made a 64x224x224 batch 3x slower than one thread. */
#define CALLER_SPIN_SECONDS 5e-5

static void pause_briefly(unsigned spins)
{
    if (spins % 1024 == 0) {
        sched_yield();
        return;
    }
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#endif
}

/* Spins until a job after `seen` is published, or for WORKER_SPIN_SECONDS. */
static void spin_for_job(unsigned long seen)
{
    double until = pool_seconds() + WORKER_SPIN_SECONDS;
    for (unsigned spins = 1; __atomic_load_n(&job_id, __ATOMIC_ACQUIRE) == seen; spins++) {
        if (spins % 64 == 0 && pool_seconds() > until)
            return;
        pause_briefly(spins);
    }
}

/* Spins until every part of the job is done, or for CALLER_SPIN_SECONDS. */
static void spin_for_parts(void)
{
    double until = pool_seconds() + CALLER_SPIN_SECONDS;
    for (unsigned spins = 1; __atomic_load_n(&parts_left, __ATOMIC_ACQUIRE) > 0; spins++) {
        if (spins % 64 == 0 && pool_seconds() > until)
            return;
        pause_briefly(spins);
    }
}

static void *worker_main(void *argument)
{
    const WorkerStart *start = argument;
    int index = start->index;
    unsigned long seen = start->first_job - 1;
    pthread_mutex_lock(&lock);
    for (;;) {
        while (job_id == seen)
            pthread_cond_wait(&wake, &lock);
        seen = job_id;
        if (index + 1 < job_threads)
            run_parts(index + 1);
        pthread_mutex_unlock(&lock);
        spin_for_job(seen);
        pthread_mutex_lock(&lock);
    }
    return NULL; /* not reached: workers live as long as the process */
}

/* Starts workers until there are `wanted` (called with `lock` held); returns how many there
 * are. Signals are blocked in them, so that the interpreter's handlers run where it expects. */
static int start_workers(int wanted, unsigned long for_job)
{
    sigset_t all, previous;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &previous);
    while (workers < wanted) {
        pthread_t thread;
        pthread_attr_t attributes;
        starts[workers].index = workers;
        starts[workers].first_job = for_job;
        pthread_attr_init(&attributes);
        pthread_attr_setdetachstate(&attributes, PTHREAD_CREATE_DETACHED);
        int failed = pthread_create(&thread, &attributes, worker_main, &starts[workers]);
        pthread_attr_destroy(&attributes);
        if (failed)
            break; /* run with the workers there are */
        workers++;
    }
    pthread_sigmask(SIG_SETMASK, &previous, NULL);
    return workers;
}

static void run_serially(pool_task task, void *context, Py_ssize_t parts)
{
    for (Py_ssize_t part = 0; part < parts; part++)
        task(context, part, parts, 0);
}

void pool_run(pool_task task, void *context, Py_ssize_t parts, int threads)
{
    if (threads > POOL_MAX_THREADS)
        threads = POOL_MAX_THREADS;
    if (threads > parts)
        threads = (int)parts;
    if (threads <= 1) {
        run_serially(task, context, parts);
        return;
    }
    pthread_mutex_lock(&lock);
    int available = busy ? 0 : start_workers(threads - 1, job_id + 1);
    if (available == 0) {
        pthread_mutex_unlock(&lock);
        run_serially(task, context, parts);
        return;
    }
    busy = 1;
    job_task = task;
    job_context = context;
    job_parts = parts;
    parts_left = parts;
    job_threads = 1 + (available < threads - 1 ? available : threads - 1);
    /* Each thread owns a contiguous run of parts: the same run lands on the same core call after
     * call, which keeps each core's share of an image in its own cache. */
    for (int thread = 0; thread < job_threads; thread++) {
        next_own[thread] = parts * thread / job_threads;
        end_own[thread] = parts * (thread + 1) / job_threads;
    }
    __atomic_store_n(&job_id, job_id + 1, __ATOMIC_RELEASE); /* read unlocked by spinning workers */
    pthread_cond_broadcast(&wake);
    run_parts(0);
    /* The workers' last parts: awake at first, as they usually end within microseconds. */
    pthread_mutex_unlock(&lock);
    spin_for_parts();
    pthread_mutex_lock(&lock);
    while (parts_left > 0)
        pthread_cond_wait(&finished, &lock);
    busy = 0;
    pthread_mutex_unlock(&lock);
}

int pool_supported_threads(void) { return POOL_MAX_THREADS; }

unsigned long pool_parallel_jobs(void) { return __atomic_load_n(&job_id, __ATOMIC_ACQUIRE); }

static void before_fork(void) { pthread_mutex_lock(&lock); }

static void after_fork_in_parent(void) { pthread_mutex_unlock(&lock); }

/* The child's only thread is the one that forked, which holds `lock` (before_fork): it releases
 * it. The conditions may name waiters of the parent's that the child does not have: fresh ones. */
static void after_fork_in_child(void)
{
    pthread_cond_init(&wake, NULL);
    pthread_cond_init(&finished, NULL);
    workers = 0;
    busy = 0;
    pthread_mutex_unlock(&lock);
}

/* Once per process: handlers installed twice would lock `lock` twice before a fork. */
int pool_init(void)
{
    static int installed = 0;
    if (installed)
        return 0;
    int failed = pthread_atfork(before_fork, after_fork_in_parent, after_fork_in_child);
    installed = !failed;
    return failed;
}

#endif
