/*
 * version.c - the version macros of <txkv.h>, txkv_version() and
 * configure's version (AC_INIT, PACKAGE_VERSION in config.h) agree.
 *
 * A release bumps all three together: AC_INIT in configure.ac and
 * TXKV_VERSION_MAJOR/MINOR/PATCH/STRING in src/txkv.h; this test fails
 * until they say the same thing.
 */
#include "config.h"

#include <stdio.h>
#include <string.h>

#include "../tap.h"
#include "txkv.h"

int main(void)
{
    char built[64];
    snprintf(built, sizeof built, "%d.%d.%d", TXKV_VERSION_MAJOR, TXKV_VERSION_MINOR,
             TXKV_VERSION_PATCH);
    is_str(TXKV_VERSION_STRING, built, "TXKV_VERSION_STRING is MAJOR.MINOR.PATCH");
    is_str(txkv_version(), TXKV_VERSION_STRING, "txkv_version() is the header's string");
    is_str(PACKAGE_VERSION, TXKV_VERSION_STRING, "configure's version (AC_INIT) is the header's");
    return done_testing();
}
