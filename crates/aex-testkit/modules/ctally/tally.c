/*
 * The test kit's `tally` (../tally) in C, persistent: a running total that must survive its
 * process, sealed by the runtime through this module's `save` and `restore`. The sealed-state
 * tests that run on the Rust tally run on this one too, and it exercises what the other C
 * modules do not: a handler, a request, a deadline and a persistent state.
 *
 * Payloads are JSON numbers and objects, as the Rust tally's, so a test drives both alike.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "aex.h"

struct tally {
    /* The sum of every number added. */
    uint64_t total;
    /* How many numbers were added. */
    uint64_t added;
    /* How often `beat` stayed silent past its deadline. */
    uint64_t silences;
};

static struct tally state;

static const aex_output RECEIPT = {"receipt"};
static const aex_request ASK = {"ask"};

/* A JSON number payload (an empty one is 0); 0 on success. */
static int number(const uint8_t *data, size_t len, uint64_t *out) {
    char text[32];
    if (len >= sizeof text) return 1;
    memcpy(text, data, len);
    text[len] = '\0';
    char *end;
    *out = strtoull(text, &end, 10);
    while (*end == ' ' || *end == '\n') end++;
    return *end != '\0';
}

/* Writes `v` as a JSON number to `reply`. */
static int reply_number(aex_buf *reply, uint64_t v) {
    char text[24];
    int n = snprintf(text, sizeof text, "%" PRIu64, v);
    return aex_buf_write(reply, (const uint8_t *)text, (size_t)n) == AEX_OK ? 0 : 1;
}

static void emit_total(struct tally *t, aex_ctx *ctx) {
    char text[24];
    int n = snprintf(text, sizeof text, "%" PRIu64, t->total);
    if (aex_emit(ctx, &RECEIPT, (const uint8_t *)text, (size_t)n) != AEX_OK) {
        fprintf(stderr, "ctally: receipt not sent: %s\n", aex_last_error(ctx));
    }
}

/* Input `add`: adds the event's number and emits the new total on `receipt`. */
static int add(void *s, aex_ctx *ctx, const uint8_t *data, size_t len) {
    struct tally *t = s;
    uint64_t n;
    if (number(data, len, &n)) {
        aex_fail(ctx, "expected a JSON number");
        return 1;
    }
    t->total += n;
    t->added++;
    /* Stdout: the runtime pointed it at the log before any module code ran, so this line
     * cannot corrupt the link (the tests that feed `add` would stall if it did). */
    printf("ctally: total %" PRIu64 "\n", t->total);
    fflush(stdout);
    emit_total(t, ctx);
    return 0;
}

/* Input `drive`: drives the device `lamp` (0 off, 1 on), when a test grants one. */
static int drive(void *s, aex_ctx *ctx, const uint8_t *data, size_t len) {
    struct tally *t = s;
    uint64_t on;
    if (number(data, len, &on)) return 1;
    t->added++;
    if (aex_device_write(ctx, "lamp", (uint32_t)on) != AEX_OK) {
        fprintf(stderr, "ctally: cannot drive the lamp: %s\n", aex_last_error(ctx));
    }
    return 0;
}

/* Entry `burst`: emits the total on `receipt` n times; answers how many emits succeeded. */
static int burst(void *s, aex_ctx *ctx, const uint8_t *arg, size_t len, aex_buf *reply) {
    uint64_t n, sent = 0;
    if (number(arg, len, &n)) return 1;
    for (uint64_t i = 0; i < n; i++) {
        char text[24];
        int m = snprintf(text, sizeof text, "%" PRIu64, ((struct tally *)s)->total);
        if (aex_emit(ctx, &RECEIPT, (const uint8_t *)text, (size_t)m) == AEX_OK) sent++;
    }
    return reply_number(reply, sent);
}

/* Entry `bump`: adds n without a connection; answers the total. */
static int bump(void *s, aex_ctx *ctx, const uint8_t *arg, size_t len, aex_buf *reply) {
    struct tally *t = s;
    uint64_t n;
    if (number(arg, len, &n)) {
        aex_fail(ctx, "expected a JSON number");
        return 1;
    }
    t->total += n;
    t->added++;
    return reply_number(reply, t->total);
}

/* Entry `totals`: the state, as the Rust tally answers it. */
static int totals(void *s, aex_ctx *ctx, const uint8_t *arg, size_t len, aex_buf *reply) {
    (void)ctx, (void)arg, (void)len;
    const struct tally *t = s;
    char text[64];
    int n = snprintf(text, sizeof text, "{\"total\":%" PRIu64 ",\"added\":%" PRIu64 "}", t->total,
                     t->added);
    return aex_buf_write(reply, (const uint8_t *)text, (size_t)n) == AEX_OK ? 0 : 1;
}

/* Entry `silences`: how often `beat` missed its deadline. */
static int silences(void *s, aex_ctx *ctx, const uint8_t *arg, size_t len, aex_buf *reply) {
    (void)ctx, (void)arg, (void)len;
    return reply_number(reply, ((const struct tally *)s)->silences);
}

/* Handler `peek`: answers a request with the total. */
static int peek(void *s, aex_ctx *ctx, const uint8_t *arg, size_t len, aex_buf *reply) {
    (void)ctx, (void)arg, (void)len;
    return reply_number(reply, ((const struct tally *)s)->total);
}

/* Entry `ask_peer`: asks the handler connected to `ask` for its total, and answers it. */
static int ask_peer(void *s, aex_ctx *ctx, const uint8_t *arg, size_t len, aex_buf *reply) {
    (void)s, (void)arg, (void)len;
    uint8_t answer[32];
    size_t got = 0;
    aex_status st = aex_send_request(ctx, &ASK, NULL, 0, answer, sizeof answer, &got);
    if (st != AEX_OK) {
        char message[300];
        snprintf(message, sizeof message, "%s: %s", aex_status_name((int)st), aex_last_error(ctx));
        aex_fail(ctx, message);
        return 1;
    }
    return aex_buf_write(reply, answer, got) == AEX_OK ? 0 : 1;
}

/* Input `beat`: a heartbeat, connected only in the deadline test (a deadline's watch is armed
 * when its input is connected, and then runs and commits every period it stays silent). */
static int beat(void *s, aex_ctx *ctx, const uint8_t *data, size_t len) {
    (void)s, (void)ctx, (void)data, (void)len;
    return 0;
}

/* Deadline on `beat`: counts the silences. */
static int silent(void *s, aex_ctx *ctx) {
    (void)ctx;
    ((struct tally *)s)->silences++;
    return 0;
}

/* The sealed state: three little-endian u64s. */
static int save(const void *s, aex_buf *out) {
    const struct tally *t = s;
    uint64_t v[3] = {t->total, t->added, t->silences};
    uint8_t bytes[24];
    for (int i = 0; i < 24; i++) bytes[i] = (uint8_t)(v[i / 8] >> (8 * (i % 8)));
    return aex_buf_write(out, bytes, sizeof bytes) == AEX_OK ? 0 : 1;
}

static int restore(void *s, const uint8_t *data, size_t len) {
    if (len != 24) return 1;
    uint64_t v[3] = {0, 0, 0};
    for (int i = 0; i < 24; i++) v[i / 8] |= (uint64_t)data[i] << (8 * (i % 8));
    struct tally *t = s;
    t->total = v[0];
    t->added = v[1];
    t->silences = v[2];
    return 0;
}

static const aex_output *const OUTPUTS[] = {&RECEIPT};
static const aex_request *const REQUESTS[] = {&ASK};
static const aex_input INPUTS[] = {{"add", add}, {"drive", drive}, {"beat", beat}};
static const aex_handler HANDLERS[] = {{"peek", peek}};
static const aex_entry ENTRIES[] = {
    {"burst", burst}, {"bump", bump}, {"totals", totals}, {"silences", silences},
    {"ask_peer", ask_peer},
};
static const aex_deadline DEADLINES[] = {{"beat", 300, silent}};

static const aex_module MODULE = {
    .state = &state,
    .persistence = AEX_PERSISTENT,
    .outputs = OUTPUTS,
    .n_outputs = AEX_LEN(OUTPUTS),
    .requests = REQUESTS,
    .n_requests = AEX_LEN(REQUESTS),
    .inputs = INPUTS,
    .n_inputs = AEX_LEN(INPUTS),
    .handlers = HANDLERS,
    .n_handlers = AEX_LEN(HANDLERS),
    .entries = ENTRIES,
    .n_entries = AEX_LEN(ENTRIES),
    .deadlines = DEADLINES,
    .n_deadlines = AEX_LEN(DEADLINES),
    .save = save,
    .restore = restore,
};

AEX_MAIN(MODULE)
