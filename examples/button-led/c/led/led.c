/*
 * The button-led example's LED driver in C, on the `sancus` node: the same driver as
 * ../../led (Rust), as a C module like the original framework's Sancus drivers.
 *
 * The field node's TEE layer grants it the digital output `led` exclusively, so nothing but
 * an authentic `toggle` event, handled by this code, switches the LED. Its state is in
 * `aex status`; it moves with the module (`aex update`) through `save` and `restore`.
 */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "aex.h"

/* The device this driver drives, as the field node's configuration names it. */
#define LED "led"

struct led {
    int on;
    uint64_t toggles;
    /* The last device error, a fixed text (empty: none). */
    const char *error;
};

static struct led state;

/* Flips the LED (the payload is ignored). */
static int toggle(void *s, aex_ctx *ctx, const uint8_t *data, size_t len) {
    (void)data, (void)len;
    struct led *l = s;
    int on = !l->on;
    aex_status st = aex_device_write(ctx, LED, (uint32_t)on);
    if (st != AEX_OK) {
        /* The status name, not the TEE layer's words: those come from the untrusted node. */
        l->error = aex_status_name((int)st);
        return 0;
    }
    l->on = on;
    l->toggles++;
    return 0;
}

/* Whether the LED is on, and how often it was switched. */
static int status(void *s, aex_ctx *ctx, const uint8_t *arg, size_t len, aex_buf *reply) {
    (void)ctx, (void)arg, (void)len;
    const struct led *l = s;
    char text[128];
    int n = snprintf(text, sizeof text, "{\"on\":%s,\"toggles\":%" PRIu64 "%s%s%s}",
                     l->on ? "true" : "false", l->toggles, l->error ? ",\"error\":\"" : "",
                     l->error ? l->error : "", l->error ? "\"" : "");
    return aex_buf_write(reply, (const uint8_t *)text, (size_t)n) == AEX_OK ? 0 : 1;
}

/* The state for a transfer: one byte for `on`, then `toggles` as 8 little-endian bytes. */
static int save(const void *s, aex_buf *out) {
    const struct led *l = s;
    uint8_t bytes[9] = {(uint8_t)(l->on != 0)};
    for (int i = 0; i < 8; i++) bytes[1 + i] = (uint8_t)(l->toggles >> (8 * i));
    return aex_buf_write(out, bytes, sizeof bytes) == AEX_OK ? 0 : 1;
}

static int restore(void *s, const uint8_t *data, size_t len) {
    struct led *l = s;
    if (len != 9 || data[0] > 1) return 1;
    l->on = data[0];
    l->toggles = 0;
    for (int i = 0; i < 8; i++) l->toggles |= (uint64_t)data[1 + i] << (8 * i);
    return 0;
}

static const aex_input INPUTS[] = {{"toggle", toggle}};
static const aex_entry ENTRIES[] = {{"status", status}};

static const aex_module MODULE = {
    .state = &state,
    .inputs = INPUTS,
    .n_inputs = AEX_LEN(INPUTS),
    .entries = ENTRIES,
    .n_entries = AEX_LEN(ENTRIES),
    .save = save,
    .restore = restore,
};

AEX_MAIN(MODULE)
