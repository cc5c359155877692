/* calibrate.h - index-bench --calibrate (bench/calibrate.c). */
#ifndef KVB_CALIBRATE_H
#define KVB_CALIBRATE_H

/*
 * Prints the cost of a dependent and of an overlapped cache miss over a
 * working set of mib MiB, and of a hit over a cache-resident set; with
 * csv_path, writes them there as CSV too.  Returns the exit status.
 */
int calibrate_run(unsigned mib, const char *csv_path);

#endif
