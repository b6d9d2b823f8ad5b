/* protocol.h - the wire protocol: worker channel messages and a test as JSON.
 *
 * Workers talk to the coordinator over one WebSocket at DRV_PROTOCOL_PATH. Every frame
 * is one JSON object {"type": ..., "v": 1, ...}; docs/protocol.md describes each
 * message, its direction and its rules. This header turns those frames into a tagged
 * struct (drv_msg) and back, and turns a submitted test (JSON) into a drv_task and
 * back, for the REST API, `drover submit FILE` and the store.
 *
 * Decoding is strict: a frame that is not valid JSON, exceeds a limit, has an unknown
 * or missing field or a value of the wrong type or range gives -1 and one sentence
 * naming the field path ("assign.tests[2].argv: must be an array of strings, got
 * number"); nothing is returned from a failed decode.
 *
 * Ownership: a decoded drv_msg owns every string and array it points to; drv_msg_free()
 * releases them. drv_msg_encode() returns a malloc'd string the caller frees with
 * free(). drv_tasks_parse() returns an array the caller frees with drv_tasks_free(). */
#ifndef DRV_PROTOCOL_PROTOCOL_H
#define DRV_PROTOCOL_PROTOCOL_H

#include <jansson.h>

#include "core/json_words.h"
#include "json/json_fields.h"
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/error.h"
#include "core/requirements.h"
#include "core/tags.h"
#include "core/task.h"

#define DRV_PROTOCOL_VERSION     1
#define DRV_PROTOCOL_PATH        "/ws/worker/v1"
#define DRV_PROTOCOL_SUBPROTOCOL "drover-worker" /* Sec-WebSocket-Protocol of the channel */
/* The same channel where a worker's frame may carry several messages, one per line
 * (docs/protocol.md): a worker offers it first, a coordinator that knows it picks it. */
#define DRV_PROTOCOL_SUBPROTOCOL_LINES "drover-worker.lines"

/* Limits, enforced on decode (docs/protocol.md, "Limits"). */
#define DRV_MSG_MAX_BYTES    (8u * 1024 * 1024) /* one frame */
#define DRV_ASSIGN_MAX_TESTS 1024               /* tests in one assign */
#define DRV_ARGV_MAX         4096               /* arguments of one test */
#define DRV_ARG_MAX_BYTES    131072             /* one argument or env value (Linux's) */
#define DRV_ENV_MAX          1024               /* env entries of one test */
#define DRV_RUNNING_MAX      4096               /* entries of hello/heartbeat "running" */
#define DRV_INSTANCE_MAX     65                 /* hello "instance": 1..64 bytes and its NUL */
#define DRV_OUTPUT_CHUNK_MAX (256u * 1024)      /* bytes of one output chunk's data */
#define DRV_OUTPUT_TAIL_MAX  (64u * 1024)       /* bytes of finished.output_tail */
#define DRV_STDERR_TAIL_MAX  (16u * 1024)       /* bytes of finished.stderr_tail */
#define DRV_STRING_MAX       4096               /* names, tokens, paths, messages */
#define DRV_LABELS_MAX       64                 /* labels of one test */
#define DRV_AFTER_MAX        4096               /* tests one test runs after */
#define DRV_MEMBERS_MAX      10000              /* tests of one batch (py3) */
#define DRV_LOCKS_MAX        64                 /* locks one test holds */
#define DRV_SUBMIT_MAX_TESTS 1000000            /* tests in one submission */
#define DRV_SHELL_PATH       "/bin/sh"          /* the one shell a test may ask for */

/* Writes the NULL-terminated strings of v (NULL: none) as a compact JSON array, the
 * same text json_dumps(JSON_COMPACT) writes for a jansson array of them, without
 * building one (the store writes argv, env and labels of every submitted test). Returns
 * the text (the caller frees it), or NULL when v[*bad] is not valid UTF-8. */
char *drv_json_strv_dump(char *const *v, size_t *bad);

/* ---- worker channel messages ------------------------------------------------------ */

typedef enum drv_msg_type {
    DRV_MSG_NONE = 0,  /* empty: what drv_msg_init(NONE) and a failed decode leave */
    DRV_MSG_HELLO,     /* worker -> coordinator: first frame, token and capabilities */
    DRV_MSG_WELCOME,   /* coordinator -> worker: accepted */
    DRV_MSG_HEARTBEAT, /* worker -> coordinator: load and what it runs */
    DRV_MSG_ASSIGN,    /* coordinator -> worker: a batch of tests */
    DRV_MSG_STARTED,   /* worker -> coordinator: a test's process started */
    DRV_MSG_OUTPUT,    /* worker -> coordinator: a chunk of a test's output */
    DRV_MSG_FINISHED,  /* worker -> coordinator: a test's outcome */
    DRV_MSG_CANCEL,    /* coordinator -> worker: stop an attempt */
    DRV_MSG_DRAIN,     /* both ways: take nothing new, finish what is held */
    DRV_MSG_ERROR,     /* both ways: the last frame was refused */
    DRV_MSG_RELEASE,   /* coordinator -> worker: give back an attempt not started (a move) */
    DRV_MSG_RELEASED,  /* worker -> coordinator: the answer to release */
    DRV_MSG_TYPE_COUNT
} drv_msg_type;

/* Who may send a message type (bit set). */
#define DRV_MSG_FROM_WORKER      1u
#define DRV_MSG_FROM_COORDINATOR 2u

/* Which attempt of which test a message is about. Attempts count from 1; a result whose
 * attempt is not the test's current one is late and is ignored, never counted. */
typedef struct drv_attempt_ref {
    uint64_t task_id; /* 0..INT64_MAX */
    uint32_t attempt; /* >= 1 */
} drv_attempt_ref;

/* What a worker probed about its machine (hello.capabilities). */
typedef struct drv_msg_caps {
    uint32_t cpu_cores;
    uint64_t memory_mb;
    uint32_t gpu_count;
    uint64_t gpu_memory_mb;
    char *cuda_cc;        /* "8.6", or NULL when no CUDA device */
    char *driver_version; /* "535.104.05", or NULL */
    char **tags;          /* NULL-terminated valid tag names; may be NULL */
    char *os;             /* "linux"; may be NULL */
    char *arch;           /* "x86_64"; may be NULL */
} drv_msg_caps;

typedef struct drv_msg_hello {
    char *token; /* required, non-empty */
    char *name;  /* required, non-empty, < DRV_WORKER_NAME_MAX bytes */
    drv_msg_caps caps;
    uint32_t slots;           /* >= 1 */
    double speed;             /* > 0; 1 when absent */
    drv_attempt_ref *running; /* what it still runs after a reconnect */
    size_t running_count;
    char *instance; /* this worker process (random, 1..64 bytes); NULL: not said (older) */
} drv_msg_hello;

/* The output of a test that could not start because of itself (its program missing or
 * not executable, its working directory wrong) starts with this; its finished says exit
 * 127 (not found) or 126, not infra_failure (docs/protocol.md, "Whose fault"). */
#define DRV_SPAWN_FAILED_PREFIX "drover: the test could not start: "

typedef struct drv_msg_welcome {
    uint64_t worker_id;
    double heartbeat_interval_s; /* > 0 */
    double server_time;          /* seconds since the Unix epoch */
    uint64_t epoch;              /* the coordinator's start number; 0: not sent */
} drv_msg_welcome;

typedef struct drv_msg_heartbeat {
    double load;          /* running / slots: >= 0; 1 = every slot busy (not overload) */
    double temperature_c; /* < 0 when unknown (null on the wire) */
    /* What the worker measured (worker/probe.h, drv_pressure_read); each < 0 when
     * unknown (null or absent on the wire: older workers send none). */
    double cpu_pressure;    /* 0..1 */
    double memory_pressure; /* 0..1 */
    double freq_ratio;      /* CPU clock / maximum, 0..1 */
    /* ct3 (issue 13): the share 0..1 of the machine's CPU time (cores x the time since
     * the last heartbeat) that the worker's own tests used; < 0 unknown (not sent). */
    double tests_cpu;
    bool throttled;
    bool overloaded;
    drv_attempt_ref *running;
    size_t running_count;
    uint32_t free_slots;
} drv_msg_heartbeat;

/* One test of an assign. shell is true exactly when argv is {DRV_SHELL_PATH, "-c",
 * command}: the test asked for a shell (a worker may refuse such tests). */
typedef struct drv_msg_test {
    uint64_t task_id;
    uint32_t attempt;
    char *name;                /* required */
    char **argv;               /* required, NULL-terminated, at least argv[0] (non-empty) */
    char **env;                /* NULL-terminated "KEY=VALUE"; may be NULL */
    char *cwd;                 /* may be NULL */
    double timeout_s;          /* 0 = none */
    uint64_t output_cap_bytes; /* 0 = the worker's default */
    bool shell;
} drv_msg_test;

typedef struct drv_msg_assign {
    drv_msg_test *tests; /* 1..DRV_ASSIGN_MAX_TESTS */
    size_t count;
    /* Fencing (docs/protocol.md): the coordinator's epoch, when it sent the assign (its
     * clock, seconds since the Unix epoch) and for how long after that a worker may still
     * take it. 0: not sent (no fencing). */
    uint64_t epoch;
    double sent_at;
    double lease_s;
} drv_msg_assign;

typedef struct drv_msg_started {
    drv_attempt_ref ref;
    int64_t pid; /* >= 1 */
    double t;    /* start time, seconds since the Unix epoch (worker's clock) */
} drv_msg_started;

typedef enum drv_stream { DRV_STREAM_STDOUT = 0, DRV_STREAM_STDERR } drv_stream;

/* Output data travels as a UTF-8 JSON string: the encoder replaces each invalid byte
 * with U+FFFD. data is NUL-terminated and may hold NUL bytes (len counts them). */
typedef struct drv_msg_output {
    drv_attempt_ref ref;
    drv_stream stream;
    char *data;
    size_t len;   /* <= DRV_OUTPUT_CHUNK_MAX */
    uint64_t seq; /* per attempt, from 0, both streams share one sequence */
} drv_msg_output;

/* Exactly one of exit code and signal is set, unless infra_failure is true (the test
 * could not be run: spawn failure, runner crash), which needs error. */
typedef struct drv_msg_finished {
    drv_attempt_ref ref;
    bool has_exit_code;
    int exit_code; /* 0..255 */
    bool has_signal;
    int signal; /* 1..127 */
    bool timed_out;
    bool infra_failure;
    char *error; /* why it could not run; may be NULL */
    double duration_s;
    uint64_t peak_memory_kb;
    char *output_tail; /* last bytes of output, like output data; may be NULL */
    size_t output_tail_len;
    char *stderr_tail; /* last bytes of stderr alone (optional: older workers omit it) */
    size_t stderr_tail_len;
} drv_msg_finished;

typedef struct drv_msg_cancel {
    drv_attempt_ref ref;
} drv_msg_cancel;

/* release (coordinator -> worker) and released (worker -> coordinator, exec2, issue 11):
 * the first phase of a move. The worker drops the attempt if it has not started it and
 * answers dropped true (also when it does not hold it); a started one runs on, dropped
 * false. */
typedef struct drv_msg_release {
    drv_attempt_ref ref;
    bool dropped; /* released only */
} drv_msg_release;

typedef struct drv_msg_drain {
    char *reason; /* required, may be empty */
    /* From a worker: the attempts it keeps (finishes); every other test the coordinator
     * assigned it is given back, never run (it refuses assigns from now on). Optional:
     * has_keeps false when absent. */
    bool has_keeps;
    drv_attempt_ref *keeps;
    size_t keeps_count;
} drv_msg_drain;

typedef struct drv_msg_error {
    char *message; /* required */
    char *field;   /* the field path it is about; may be NULL */
} drv_msg_error;

typedef struct drv_msg {
    drv_msg_type type;
    union {
        drv_msg_hello hello;
        drv_msg_welcome welcome;
        drv_msg_heartbeat heartbeat;
        drv_msg_assign assign;
        drv_msg_started started;
        drv_msg_output output;
        drv_msg_finished finished;
        drv_msg_cancel cancel;
        drv_msg_release release; /* release and released */
        drv_msg_drain drain;
        drv_msg_error error;
    };
} drv_msg;

/* Makes m an empty message of type (all fields zero, hello.speed 1, heartbeat
 * temperature unknown). Does not free what m held. */
void drv_msg_init(drv_msg *m, drv_msg_type type);
/* Frees every string and array m owns and leaves it DRV_MSG_NONE; NULL is a no-op. */
void drv_msg_free(drv_msg *m);

/* Whether the hand-written fast paths (flat_json.h: the common shapes of finished and
 * assign frames and of submission lines) are used before jansson. They must give
 * exactly what jansson's path gives; fuzz_protocol turns them off to compare. Default
 * true; not thread-safe to change while decoding. */
extern bool drv_protocol_fast_paths;

/* Decodes one frame of len bytes (need not be NUL-terminated). On success fills *out,
 * which then owns its strings, and returns 0. On any problem returns -1 with err naming
 * the field path and the reason, and leaves *out DRV_MSG_NONE (nothing to free). */
int drv_msg_decode(const char *buf, size_t len, drv_msg *out, drv_error *err);

/* Encodes m as one compact JSON object. Returns a NUL-terminated string the caller
 * frees with free(), its length in *len when len is not NULL. NULL optional strings
 * are left out; strings are made valid UTF-8. Returns NULL with err filled only for a
 * type out of range (DRV_MSG_NONE included). The result decodes to m when m obeys the
 * rules above. */
char *drv_msg_encode(const drv_msg *m, size_t *len, drv_error *err);

/* "hello", ...; "?" out of range. */
const char *drv_msg_type_name(drv_msg_type t);
/* The type named name, or -1 (DRV_MSG_NONE is not a name). */
int drv_msg_type_parse(const char *name);
/* DRV_MSG_FROM_WORKER / DRV_MSG_FROM_COORDINATOR bits of who may send t; 0 for NONE. */
unsigned drv_msg_senders(drv_msg_type t);
/* When m is about one attempt (started, output, finished, cancel), copies its
 * reference into *ref and returns true; false otherwise. */
bool drv_msg_attempt(const drv_msg *m, drv_attempt_ref *ref);

/* Converts a hello's capabilities into the balancer's form, interning its tags into
 * tags. Returns -1 with err ("hello.capabilities.cuda_cc: ...") when a value does not
 * parse or the tags do not fit in the table; then nothing is interned. */
int drv_msg_caps_to_capabilities(const drv_msg_caps *caps, drv_tag_table *tags,
                                 drv_capabilities *out, drv_error *err);

/* Fills out (whose old contents are not freed) with a deep copy of what a worker needs
 * to run attempt `attempt` of t. out owns its strings; free them through the assign
 * message it is put in, or drv_msg_test_clear(). */
void drv_msg_test_from_task(drv_msg_test *out, const drv_task *t, uint32_t attempt,
                            uint64_t output_cap_bytes);
/* Frees what one test owns and zeroes it. */
void drv_msg_test_clear(drv_msg_test *t);

/* True when argv is exactly {DRV_SHELL_PATH, "-c", command}: the test asked for a
 * shell. NULL or shorter vectors give false. */
bool drv_argv_is_shell(char *const *argv);

/* ---- a test as JSON (submissions, the store) -------------------------------------- */

/* Reads one submitted test from obj. where prefixes every error path ("tests[3]"; may be
 * NULL or ""). New tag names are interned into tags only when the whole test is valid.
 * Returns 0 with *out filled (out is initialised here; its old contents are not freed)
 * or -1 with err, *out then empty. Unknown fields are errors; a command goes through a
 * shell only with "shell": true. */
int drv_task_from_json(const json_t *obj, drv_task *out, drv_tag_table *tags, const char *where,
                       drv_error *err);
/* Like drv_task_from_json() and also reads what the store keeps: id, state, attempts. */
int drv_task_from_json_record(const json_t *obj, drv_task *out, drv_tag_table *tags,
                              const char *where, drv_error *err);
/* The submission form of t (a new reference, never NULL). drv_task_from_json() of it
 * gives back t (its id, state and attempts aside). */
json_t *drv_task_to_json(const drv_task *t, const drv_tag_table *tags);
/* The store's form: the submission form plus id, state and attempts. */
json_t *drv_task_to_json_record(const drv_task *t, const drv_tag_table *tags);

/* Parses a submission of len bytes: a JSON array of tests, one test object, or JSON
 * lines (one object per line; blank lines ignored). All or nothing: on success returns
 * 0 with *out a new array of *count (>= 1) tasks; on the first problem returns -1 with
 * err naming "tests[3].priority: ..." or "line 7: priority: ...", *out NULL, *count 0
 * and no tag interned. An input without any test is an error. */
int drv_tasks_parse(const char *buf, size_t len, drv_tag_table *tags, drv_task **out, size_t *count,
                    drv_error *err);
/* Clears and frees n tasks from drv_tasks_parse(); NULL is a no-op. */
void drv_tasks_free(drv_task *tasks, size_t n);

/* How the tests of one submission run after each other: order lists every index so that
 * each test comes after those it runs after; after_of[after_start[i] .. after_start[i+1])
 * are the indexes test i runs after. All NULL when no test uses after. */
typedef struct drv_tasks_plan {
    size_t *order;
    uint32_t *after_start; /* n + 1 entries */
    uint32_t *after_of;
} drv_tasks_plan;

/* Checks a submission as a whole: every name once (else "tests: duplicate names: ..."
 * with the names), every after naming another test of it, and no cycle (named). Fills
 * *plan when not NULL (free it with drv_tasks_plan_free). Returns 0, or -1 with err. */
int drv_tasks_check(const drv_task *tasks, size_t n, drv_tasks_plan *plan, drv_error *err);
void drv_tasks_plan_free(drv_tasks_plan *plan);

/* ---- requirements and capabilities as JSON (requirements_json.c) ---------------- */

/* Tag names read but not yet interned: each gets the id it will have once committed, so
 * input found bad later leaves the tag table as it was. {tags, NULL} starts one. */
typedef struct drv_tag_stage {
    drv_tag_table *tags;  /* the real table: only read until drv_tag_stage_commit() */
    drv_tag_table *fresh; /* names new to tags, created on first need; owned here */
} drv_tag_stage;
/* Gives name its id (real or provisional) in *id. -1 with err "path: ..." for an invalid
 * name or one that would not fit in the table. */
int drv_tag_stage_id(drv_tag_stage *st, const char *name, const char *path, int *id,
                     drv_error *err);
/* Interns the staged names into the real table. -1 with err if it changed meanwhile. */
int drv_tag_stage_commit(drv_tag_stage *st, drv_error *err);
void drv_tag_stage_free(drv_tag_stage *st);

/* Reader flag: integer cuda_cc and driver_version are the parsed form (86, 535104005),
 * as store files written before the one codec hold them; "cores" is not taken. */
#define DRV_RES_STORED 1u
/* Reader flag: a worker's hello (protocol v1), whose capabilities also spell cpu as
 * cpu_cores and gpus as gpu_count (either name, not both); see docs/protocol.md. */
#define DRV_RES_HELLO 2u

/* Reads requirements at path from object o into *r (only the members present change
 * it): cpu, memory_mb (or memory_gb), gpus, gpu_memory_mb (or gpu_memory_gb), cuda_cc
 * ("8.6"), driver_version ("535.104.05"), all_of (or tags), any_of, none_of, browser,
 * backend. o may hold the caller's keys also_known (NULL-terminated; may be NULL);
 * any other key is an error naming the known ones. Tags are staged in st. Returns 0, or
 * -1 with err "path.key: ..." */
int drv_requirements_read(const json_t *o, const char *path, unsigned flags,
                          const char *const *also_known, drv_tag_stage *st, drv_requirements *r,
                          drv_error *err);
/* Reads capabilities the same way: cpu (or cores; with DRV_RES_HELLO also cpu_cores),
 * memory_mb (or memory_gb), gpus (with DRV_RES_HELLO also gpu_count), gpu_memory_mb (or
 * gpu_memory_gb), cuda_cc, driver_version, tags. */
int drv_capabilities_read(const json_t *o, const char *path, unsigned flags,
                          const char *const *also_known, drv_tag_stage *st, drv_capabilities *c,
                          drv_error *err);
/* Requirements as a new JSON object holding only what differs from "no requirement"
 * ({} for none); capabilities with cpu, memory_mb, gpus, gpu_memory_mb and tags always.
 * NULL with err ("path: ...") when a tag id is not in tags or a size does not fit. */
json_t *drv_requirements_json(const drv_requirements *r, const drv_tag_table *tags,
                              const char *path, drv_error *err);
json_t *drv_capabilities_json(const drv_capabilities *c, const drv_tag_table *tags,
                              const char *path, drv_error *err);

/* ---- JSON field readers: json/json_fields.h ------------------------------------ */

/* An object of strings {"KEY": "VALUE"} (at most DRV_ENV_MAX; names non-empty, without
 * '=') into a new NULL-terminated vector of "KEY=VALUE" (free with drv_strv_free). */
int drv_json_env(const json_t *obj, const char *path, const char *key, unsigned flags, char ***out,
                 drv_error *err);
/* The writers of the same shapes, as new references: an array of the strings of v
 * (NULL: empty) and an object {"KEY": "VALUE"} of env's "KEY=VALUE" entries, every string
 * through drv_json_text. */
json_t *drv_json_strv_value(char *const *v);
json_t *drv_json_env_value(char *const *env);

#endif
