/* client.h - the client side of the coordinator's REST API (docs/api.md): an HTTP client,
 * the submission of tests (from a file or built from command-line flags), readers of the
 * API's answers, and the JUnit XML and JSON reports of a run.
 *
 * The HTTP client keeps one libcurl easy handle for its whole life, so consecutive
 * requests reuse the connection (keep-alive). Every failure becomes one sentence a user
 * can act on: "cannot reach the coordinator at http://127.0.0.1:7070: Connection refused
 * (is `drover coordinator` running?)", "coordinator refused the token (401): ...", or the
 * coordinator's own {"error": ...} message with its status.
 *
 * Ownership: drv_client_open() returns a client the caller closes with
 * drv_client_close(). Every json_t * returned is a new reference the caller releases with
 * json_decref(). Strings passed in are borrowed for the call. */
#ifndef DRV_CLIENT_CLIENT_H
#define DRV_CLIENT_CLIENT_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "core/error.h"
#include "core/task.h"

#define DRV_CLIENT_DEFAULT_URL       "http://127.0.0.1:7070"
#define DRV_CLIENT_CONNECT_TIMEOUT_S 5.0
#define DRV_CLIENT_REQUEST_TIMEOUT_S 60.0
#define DRV_CLIENT_BODY_MAX          (512u * 1024u * 1024u) /* largest answer accepted */
#define DRV_CLIENT_TESTS_PAGE        100000 /* tests asked for per list request (API max) */

/* ---- the HTTP client ---------------------------------------------------------------- */

typedef struct drv_client drv_client;

typedef struct drv_client_options {
    const char *url;          /* NULL: $DROVER_URL, else DRV_CLIENT_DEFAULT_URL */
    const char *token;        /* NULL: $DROVER_TOKEN, else none (no Authorization header) */
    double request_timeout_s; /* whole request; 0: DRV_CLIENT_REQUEST_TIMEOUT_S */
    double connect_timeout_s; /* 0: DRV_CLIENT_CONNECT_TIMEOUT_S */
    const char *ca_file;      /* PEM CA for an https:// coordinator; NULL: $DROVER_CA, else
                                 the system's */
} drv_client_options;

/* Opens a client for the coordinator named by opt (NULL: all defaults). Nothing is sent
 * yet. ws:// and wss:// URLs (shared with workers) mean http:// and https://. Returns
 * NULL with err filled when the URL is not one of those with a host, the token
 * holds a line break or a control character, or libcurl cannot start. */
drv_client *drv_client_open(const drv_client_options *opt, drv_error *err);
/* Closes the connection and frees c; NULL is a no-op. */
void drv_client_close(drv_client *c);
/* The coordinator's base URL as used ("http://127.0.0.1:7070", no trailing slash). */
const char *drv_client_url(const drv_client *c);
/* The HTTP status of the last answer (0 when the last request got no answer). */
long drv_client_status(const drv_client *c);

/* Sends METHOD path (path starts with '/', query included) with body (len bytes; NULL for
 * none) and waits for the answer. On a 2xx answer returns 0 with *out the parsed JSON body
 * (an empty object when the body is empty). Otherwise returns -1 with *out NULL and err
 * saying what happened (no answer, 401, the coordinator's error message, a body that is
 * not JSON); drv_client_status() then tells 0 (no answer) from the HTTP status. */
int drv_client_request(drv_client *c, const char *method, const char *path, const char *body,
                       size_t len, json_t **out, drv_error *err);
/* GET path: the parsed answer, or NULL with err (see drv_client_request). */
json_t *drv_client_get(drv_client *c, const char *path, drv_error *err);
/* POST path with body as compact JSON (NULL: an empty body). */
json_t *drv_client_post(drv_client *c, const char *path, const json_t *body, drv_error *err);

/* ---- the API's calls ------------------------------------------------------------------ */

typedef struct drv_submit_result {
    uint64_t run_id;
    size_t count; /* tests accepted */
} drv_submit_result;

/* Checks a submission (a JSON array of tests, one test object, or JSON lines; protocol.md
 * "Tests as JSON") without sending it: returns the number of tests (>= 1), or -1 with err
 * naming the test and field ("line 7: priority: must be an integer 0..1000, got 5000"). */
long drv_submission_check(const char *buf, size_t len, drv_error *err);

/* A copy of a valid submission (as drv_submission_check() accepts) in which every test
 * without "reruns" of its own has reruns (`--rerun-failures N`): a new string the caller
 * frees, its length in *out_len; NULL with err when it cannot be read. (suite2) */
char *drv_submission_with_reruns(const char *buf, size_t len, uint32_t reruns, size_t *out_len,
                                 drv_error *err);

/* Checks the submission in buf with drv_submission_check(); when it is valid, POSTs it to
 * /api/v1/tests (with run=run_name when run_name is not NULL or "") and fills *out from
 * the coordinator's answer. A bad submission returns -1 with err ("SOURCE: line 3:
 * priority: ...; nothing was submitted"; source names the input, NULL for none) and
 * sends nothing. */
int drv_client_submit(drv_client *c, const char *buf, size_t len, const char *source,
                      const char *run_name, drv_submit_result *out, drv_error *err);

/* GET /api/v1/runs/ID: the run summary, or NULL with err. */
json_t *drv_client_run(drv_client *c, uint64_t run_id, drv_error *err);
/* GET /api/v1/runs/ID?wait=S: the same, answered as soon as the run is done or after
 * wait_s seconds, whichever is first (a coordinator that does not know `wait` answers
 * at once). */
json_t *drv_client_run_wait(drv_client *c, uint64_t run_id, unsigned wait_s, drv_error *err);
/* The id of the most recent run (GET /api/v1/runs?limit=1) in *run_id. Returns 0, or -1
 * with err ("no runs on the coordinator at URL yet" when there is none). */
int drv_client_latest_run(drv_client *c, uint64_t *run_id, drv_error *err);
/* py3: the id of the newest test named exactly name (GET /api/v1/tests?name=...) in
 * *test_id. Returns 0, or -1 with err ("no test named ..."). */
int drv_client_test_by_name(drv_client *c, const char *name, uint64_t *test_id, drv_error *err);
/* GET /api/v1/tests/ID: the test with its attempts, or NULL with err. */
json_t *drv_client_test(drv_client *c, uint64_t test_id, drv_error *err);
/* Every test of run run_id (state NULL) or only those in state (a state name), in id
 * order, fetched a page of DRV_CLIENT_TESTS_PAGE at a time, at most max (0: no limit).
 * Returns a JSON array, or NULL with err. */
json_t *drv_client_run_tests(drv_client *c, uint64_t run_id, const char *state, size_t max,
                             drv_error *err);
/* Replaces each test of tests (an array of list items) that drv_report_needs_detail()
 * selects by its full record from drv_client_test(), so the reports can show its
 * attempts and output. Returns 0, or -1 with err (tests may then be partly replaced). */
int drv_client_add_details(drv_client *c, json_t *tests, drv_error *err);

/* ---- reading the API's answers ------------------------------------------------------ */

/* o[key] as a string, or NULL when o is not an object, key is absent, null or another
 * type. The string belongs to o. */
const char *drv_api_string(const json_t *o, const char *key);
/* o[key] as a number (integer or real), or dflt when absent, null or another type. */
double drv_api_number(const json_t *o, const char *key, double dflt);
/* o[key] as an integer, or dflt when absent, null or not an integer. */
int64_t drv_api_int(const json_t *o, const char *key, int64_t dflt);
/* o[key] is true. */
bool drv_api_true(const json_t *o, const char *key);

/* A run's counts by state (indexed by drv_task_state; see core/task.h). */
typedef struct drv_run_counts {
    uint64_t by_state[DRV_TASK_STATE_COUNT];
    uint64_t submitted;
    uint64_t final; /* passed + failed + timed_out + cancelled + unschedulable */
    bool done;
    double eta_s; /* the coordinator's estimate of the time left (eta_s); < 0: not given */
} drv_run_counts;

/* Reads a run summary (GET /api/v1/runs/ID) into *out; missing counts are 0. */
void drv_run_counts_read(const json_t *run, drv_run_counts *out);
/* True when every test of the run passed or skipped itself (and there is at least one). */
bool drv_run_counts_all_passed(const drv_run_counts *rc);
/* The progress line of a run: "run 4: 37/40 done, 1 running, 1 assigned, 1 queued, 1 failed,
 * 12.3 s, ETA 8 s" (zero counts left out; "failed" counts failed and timed out; elapsed_s < 0
 * leaves the time out; the ETA only while not done and when the coordinator gave one). Always
 * NUL-terminates buf (len > 0). */
void drv_run_progress_format(uint64_t run_id, const drv_run_counts *rc, double elapsed_s, char *buf,
                             size_t len);
/* The outcome of a finished test in a few words: "exit 3", "signal 9", "timed out after
 * 30 s", "infrastructure failure: REASON", "cancelled", "unschedulable: REASON". Reads a
 * list item or a full record (then the last attempt). Always NUL-terminates buf. */
void drv_test_outcome_format(const json_t *test, char *buf, size_t len);
/* The output tail of a test's last attempt that has one (a full record's attempts), or
 * NULL; its length in *len when len is not NULL (the tail may hold NUL bytes). Belongs
 * to test. */
const char *drv_test_output_tail(const json_t *test, size_t *len);
/* A pointer into s at the start of its last n lines (a final newline does not count as
 * a line of its own); s itself when it has n lines or fewer; its end for n 0; NULL for
 * NULL. */
const char *drv_text_last_lines(const char *s, size_t n);

/* ---- a test built from command-line flags ------------------------------------------- */

/* One flag of `drover submit -- CMD` ("--priority", "N", "0..1000, higher first"). */
typedef struct drv_test_flag {
    const char *name;  /* "--priority" */
    const char *value; /* what it takes ("N"), NULL for a switch (--shell) */
    const char *help;
} drv_test_flag;

/* The i-th flag a test can be built from (for usage texts), NULL when i is past the
 * last. */
const drv_test_flag *drv_test_flag_at(size_t i);
/* The flag called name ("--cpu"), or NULL when it is not one of them. */
const drv_test_flag *drv_test_flag_find(const char *name);

typedef struct drv_test_builder {
    json_t *test; /* the fields given so far, NULL before the first; owned */
    bool shell;
} drv_test_builder;

/* Makes b empty (allocates nothing). */
void drv_test_builder_init(drv_test_builder *b);
/* Frees what b holds and makes it empty again. */
void drv_test_builder_clear(drv_test_builder *b);
/* Applies flag f (from drv_test_flag_find) with value (NULL for a switch). Repeatable
 * flags (--require, --any-of, --avoid, --env, --label) add to their list, and the tag
 * flags split value at commas; the others replace an earlier value. Returns 0, or -1
 * with err ("--priority: expected an integer, got \"high\"", "--env: expected K=V, got
 * \"X\""). Ranges are checked by drv_test_builder_finish(). */
int drv_test_builder_set(drv_test_builder *b, const drv_test_flag *f, const char *value,
                         drv_error *err);
/* The test of command (a NULL-terminated argv, at least one word) with the flags given:
 * argv, or with --shell "command" (the words joined by spaces) and "shell": true; name
 * from --name or else the command line as a shell would show it. Checked like a
 * submission; returns a new object, or NULL with err ("the test given on the command
 * line: priority: must be an integer 0..1000, got 5000"). b is left as it was. */
json_t *drv_test_builder_finish(const drv_test_builder *b, char *const *command, drv_error *err);

/* The words of a command as one line a shell would read back as the same words: joined
 * by spaces, each word that needs it in single quotes ("sh -c 'echo hi'"). A new string
 * the caller frees; "" for NULL or no words. */
char *drv_command_line(char *const *words);

/* ---- reports ------------------------------------------------------------------------ */

/* True for a test whose report needs its full record (its attempts): failed, timed out,
 * or with more than one attempt (a retry, or a speculative copy: the report says which
 * copy won), given as a listing item. */
bool drv_report_needs_detail(const json_t *test);

/* A test's speculative copy, from its full record's attempts: whether it had one, and if
 * so the attempt whose result counts (0 while none has one), that attempt's worker, and
 * whether the copy (not the attempt it copied) won. */
typedef struct drv_speculation_info {
    bool speculated;
    uint32_t winner;
    const char *winner_worker; /* borrowed from the record; NULL when unknown */
    bool copy_won;
} drv_speculation_info;
drv_speculation_info drv_test_speculation(const json_t *test);

/* Writes the JUnit XML report of one run to out: a <testsuites> with one <testsuite> for
 * the run (tests, failures, errors, skipped, time counts) and one <testcase name
 * classname time> per test of tests (list items or full records). failed and timed_out
 * give a <failure message="exit 3"> holding the output tail of the last attempt; an
 * infrastructure failure (last attempt infra_failure, or abandoned) an <error>;
 * cancelled, unschedulable and tests not finished yet a <skipped message=...>. Text is
 * XML-escaped and characters XML 1.0 forbids are dropped. Returns 0, or -1 with err when
 * run or tests is not what the API returns or writing fails. */
int drv_report_junit(FILE *out, const json_t *run, const json_t *tests, drv_error *err);

/* Writes the JSON report of one run: {"run": RUN, "tests": [...]} (indented, newline
 * at the end). Returns 0, or -1 with err. */
int drv_report_json(FILE *out, const json_t *run, const json_t *tests, drv_error *err);

#endif
