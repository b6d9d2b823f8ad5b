/* proc_status.h - what Linux says of a process in /proc/PID/status, for the parts that
 * measure memory: the coordinator its own (GET /api/v1/status, /metrics), the worker
 * its tests' (peak memory), drover stress the coordinator it drives. One reader instead
 * of one per part. */
#ifndef DRV_SYS_PROC_STATUS_H
#define DRV_SYS_PROC_STATUS_H

/* Reads VmRSS (resident now) and VmHWM (resident at the peak), in KiB, of process pid
 * (0: this process) into *rss_kb and *hwm_kb; each is -1 where it cannot be read (no
 * such process, not Linux, a kernel thread). Returns 0 when the file was read, -1 when
 * not. */
int drv_proc_memory_kb(int pid, long long *rss_kb, long long *hwm_kb);

/* The CPU seconds process pid used so far, itself and its children it has waited for
 * (utime + stime + cutime + cstime of /proc/PID/stat), or -1 when it cannot be read. */
double drv_proc_cpu_s(int pid);

/* The CPU seconds of this process's children it has waited for (getrusage
 * RUSAGE_CHILDREN, user + system). */
double drv_proc_children_cpu_s(void);

/* The number of file descriptors this process has open (/proc/self/fd), or -1 when it
 * cannot be read. */
int drv_proc_open_fds(void);

#endif
