/*
 * The button-led example's button driver in C, on the `sancus` node: the same driver as
 * ../../button (Rust), as a C module like the original framework's Sancus drivers.
 *
 * The field node's TEE layer grants it the digital input `button` exclusively. It polls the
 * button on the node's periodic trigger and forwards each press (a rising edge) as an
 * authentic event on the output `pressed`, numbered from 1 (a JSON number, as the Rust driver
 * sends). The owner can also press it from afar over the direct connection `press`.
 */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "aex.h"
#include "json.h"

/* The device this driver reads, as the field node's configuration names it. */
#define BUTTON "button"

struct button {
    uint64_t presses;
    /* Whether the button was down at the last poll. */
    int down;
    /* The last device error, for `aex status` (empty: none). */
    char error[200];
};

static struct button state;

static const aex_output PRESSED = {"pressed"};

static void pressed(struct button *b, aex_ctx *ctx) {
    b->presses++;
    char text[24];
    int n = snprintf(text, sizeof text, "%" PRIu64, b->presses);
    aex_status st = aex_emit(ctx, &PRESSED, (const uint8_t *)text, (size_t)n);
    if (st != AEX_OK) {
        fprintf(stderr, "button: output `pressed`: %s\n", aex_last_error(ctx));
    }
}

/* One press from the owner, over the direct connection (the payload is ignored). */
static int press(void *s, aex_ctx *ctx, const uint8_t *data, size_t len) {
    (void)data, (void)len;
    pressed(s, ctx);
    return 0;
}

/* Looks at the button: a press is the moment it goes down. */
static int poll(void *s, aex_ctx *ctx) {
    struct button *b = s;
    uint32_t level;
    aex_status st = aex_device_read(ctx, BUTTON, &level);
    if (st != AEX_OK) {
        snprintf(b->error, sizeof b->error, "%s", aex_last_error(ctx));
        return 0;
    }
    int down = level == 1;
    if (down && !b->down) pressed(b, ctx);
    b->down = down;
    return 0;
}

/* The number of presses so far, and the last device error (shown by `aex status`). */
static int status(void *s, aex_ctx *ctx, const uint8_t *arg, size_t len, aex_buf *reply) {
    (void)ctx, (void)arg, (void)len;
    const struct button *b = s;
    char text[512];
    int n = snprintf(text, sizeof text, "{\"presses\":%" PRIu64, b->presses);
    if (b->error[0]) {
        n += snprintf(text + n, sizeof text - (size_t)n, ",\"error\":");
        n += json_string(text + n, sizeof text - (size_t)n, b->error);
    }
    n += snprintf(text + n, sizeof text - (size_t)n, "}");
    return aex_buf_write(reply, (const uint8_t *)text, (size_t)n) == AEX_OK ? 0 : 1;
}

static const aex_output *const OUTPUTS[] = {&PRESSED};
static const aex_input INPUTS[] = {{"press", press}};
static const aex_periodic PERIODIC[] = {{"poll", poll}};
static const aex_entry ENTRIES[] = {{"status", status}};

static const aex_module MODULE = {
    .state = &state,
    .outputs = OUTPUTS,
    .n_outputs = AEX_LEN(OUTPUTS),
    .inputs = INPUTS,
    .n_inputs = AEX_LEN(INPUTS),
    .periodic = PERIODIC,
    .n_periodic = AEX_LEN(PERIODIC),
    .entries = ENTRIES,
    .n_entries = AEX_LEN(ENTRIES),
};

AEX_MAIN(MODULE)
