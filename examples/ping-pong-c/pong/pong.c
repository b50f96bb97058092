/*
 * The pong half of ping-pong, in C: answers every ping with the same bytes, and counts them.
 *
 * It links the same trusted runtime as the Rust pong (examples/ping-pong/pong), through
 * aex.h and libaex_c.a: the descriptor's `c = "pong"` makes the deployer compile this
 * directory, measure the binary and check its ports against the connections.
 */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "aex.h"

/* The module's state: how many pings it answered. */
struct pong {
    uint64_t pings;
};

static struct pong state;

/* The output `pong`: what ping's input `pong` receives. */
static const aex_output PONG = {"pong"};

/* Input `ping`: echoes the event on `pong`. */
static int ping(void *s, aex_ctx *ctx, const uint8_t *data, size_t len) {
    struct pong *p = s;
    p->pings++;
    aex_status st = aex_emit(ctx, &PONG, data, len);
    if (st != AEX_OK) {
        /* An input has no caller to tell: the module's log (stderr) says what was not sent. */
        fprintf(stderr, "pong: output `pong`: %s: %s\n", aex_status_name(st), aex_last_error(ctx));
    }
    return 0;
}

/* Entry point `count`: the number of pings answered so far, as JSON (what `aex call` shows). */
static int count(void *s, aex_ctx *ctx, const uint8_t *arg, size_t len, aex_buf *reply) {
    (void)ctx, (void)arg, (void)len;
    const struct pong *p = s;
    char text[24];
    int n = snprintf(text, sizeof text, "%" PRIu64, p->pings);
    return aex_buf_write(reply, (const uint8_t *)text, (size_t)n) == AEX_OK ? 0 : 1;
}

/* State transfer (`aex update`): the count as 8 little-endian bytes. */
static int save(const void *s, aex_buf *out) {
    uint64_t v = ((const struct pong *)s)->pings;
    uint8_t bytes[8];
    for (int i = 0; i < 8; i++) bytes[i] = (uint8_t)(v >> (8 * i));
    return aex_buf_write(out, bytes, sizeof bytes) == AEX_OK ? 0 : 1;
}

static int restore(void *s, const uint8_t *data, size_t len) {
    if (len != 8) return 1;
    uint64_t v = 0;
    for (int i = 0; i < 8; i++) v |= (uint64_t)data[i] << (8 * i);
    ((struct pong *)s)->pings = v;
    return 0;
}

static const aex_output *const OUTPUTS[] = {&PONG};
static const aex_input INPUTS[] = {{"ping", ping}};
static const aex_entry ENTRIES[] = {{"count", count}};

static const aex_module MODULE = {
    .state = &state,
    .outputs = OUTPUTS,
    .n_outputs = AEX_LEN(OUTPUTS),
    .inputs = INPUTS,
    .n_inputs = AEX_LEN(INPUTS),
    .entries = ENTRIES,
    .n_entries = AEX_LEN(ENTRIES),
    .save = save,
    .restore = restore,
};

AEX_MAIN(MODULE)
