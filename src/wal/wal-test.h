/*
 * wal-test.h - tests only: the I/O seam of src/wal/.  A test replaces
 * wal_io's functions (one struct for the whole process) to make writes and
 * syncs fail with ENOSPC or EIO, or come back short, and puts the saved
 * struct back afterwards.  Not part of the public API.
 */
#ifndef TXKV_WAL_WAL_TEST_H
#define TXKV_WAL_WAL_TEST_H

#include "wal/wal.h"

extern struct wal_io wal_io;

#endif /* TXKV_WAL_WAL_TEST_H */
