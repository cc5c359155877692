/*
 * wal-test.h - tests only: the I/O seam of src/wal/.  A test replaces
 * wal_io's functions (one struct for the whole process) to make writes,
 * syncs and the log's block allocation fail with ENOSPC or EIO, or writes
 * come back short, and puts the saved struct back afterwards.  A test may
 * also make the log's mapped window small (a multiple of the page size,
 * set before txkv_open), so that appends move it often, and make a
 * checkpoint count wal_ckpt_cpus CPUs (so that committers do its walk
 * however many the machine has).  Not part of the public API.
 */
#ifndef TXKV_WAL_WAL_TEST_H
#define TXKV_WAL_WAL_TEST_H

#include "wal/wal.h"

extern struct wal_io wal_io;
extern size_t wal_window_bytes;
extern unsigned wal_ckpt_cpus;

#endif /* TXKV_WAL_WAL_TEST_H */
