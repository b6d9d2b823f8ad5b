/* store_fixture.h - the fixture of the store's unit tests on real files (test_store.c,
 * test_retention.c): each test gets a directory of its own from mkdtemp, the store's
 * path in it and a tag table; teardown removes every file of the directory (the store,
 * its -wal and -shm) and the directory. Plus one integer read from the file over a
 * read-only connection of the test's own, which bypasses the store.
 *
 * Header-only: each test file includes it after <cmocka.h>; everything here is static
 * inline, so a file that does not use a helper does not warn. A test file's cmocka
 * setup is one line: `return store_fx_setup(state, "drv_NAME");`. */
#ifndef DRV_TESTS_UNIT_STORE_FIXTURE_H
#define DRV_TESTS_UNIT_STORE_FIXTURE_H

#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sqlite3.h>

#include "core/error.h"
#include "core/tags.h"

typedef struct store_fixture {
    char dir[64];
    char path[128]; /* dir/drover.db, not created here */
    drv_tag_table *tags;
} store_fixture;

/* Makes /tmp/PREFIX_XXXXXX and the fixture in *state. Returns 0, or -1 (nothing made)
 * when the directory cannot be made: cmocka then fails the test. */
static inline int store_fx_setup(void **state, const char *prefix)
{
    store_fixture *f = drv_xcalloc(1, sizeof *f);
    snprintf(f->dir, sizeof f->dir, "/tmp/%.40s_XXXXXX", prefix);
    if (!mkdtemp(f->dir)) {
        free(f);
        return -1;
    }
    snprintf(f->path, sizeof f->path, "%s/drover.db", f->dir);
    f->tags = drv_tag_table_new();
    *state = f;
    return 0;
}

/* Removes every file of the test's directory and it, and frees the fixture. */
static inline int store_fx_teardown(void **state)
{
    store_fixture *f = *state;
    DIR *d = opendir(f->dir);
    if (d) {
        struct dirent *e;
        while ((e = readdir(d))) {
            if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
                continue;
            char p[512];
            snprintf(p, sizeof p, "%s/%s", f->dir, e->d_name);
            unlink(p);
        }
        closedir(d);
    }
    rmdir(f->dir);
    drv_tag_table_free(f->tags);
    free(f);
    return 0;
}

/* The first column of the first row of sql (a count(*), a PRAGMA) on the file at path,
 * read over a read-only connection of the test's own; fails the test, naming the query
 * and SQLite's message, when it cannot be read. */
static inline int64_t store_fx_int(const char *path, const char *sql)
{
    sqlite3 *db = NULL;
    sqlite3_stmt *st = NULL;
    int64_t v = -1;
    if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL) == SQLITE_OK &&
        sqlite3_prepare_v2(db, sql, -1, &st, NULL) == SQLITE_OK && sqlite3_step(st) == SQLITE_ROW)
        v = sqlite3_column_int64(st, 0);
    else
        fail_msg("raw query %s: %s", sql, sqlite3_errmsg(db));
    sqlite3_finalize(st);
    sqlite3_close(db);
    return v;
}

#endif
