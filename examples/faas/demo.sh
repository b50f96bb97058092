#!/bin/sh
# The faas example's clients, run by `aex up` (the descriptor's `[[run]]` step) once both
# function servers are up; `$AEX` is the aex executable, `$AEX_APP` the descriptor.
#
# Two clients, alice and bob, each with their own key (mutual TLS: the module bills the key),
# send a picture to `thumbnail` on both instances over attested HTTPS. `aex fetch` verifies each
# module's certificate with the deployer's appraisal, checks each receipt (signed by the receipt
# key that certificate attests, for this client, input and output) and appends it to the
# client's receipt file. Then the provider's bill of each instance: `aex tls export` verifies the
# instance and writes its certificate, and `aex bill --cert` reads the receipt key from it.
set -eu
AEX=${AEX:-aex}
APP=${AEX_APP:-.}
SGX=${FAAS_SGX_URL:-https://127.0.0.1:8441}
TZ=${FAAS_TZ_URL:-https://127.0.0.1:8442}
OUT=${FAAS_OUT:-.aex/faas-demo}
mkdir -p "$OUT"
rm -f "$OUT"/*.receipts

# A 512 x 384 picture of noise (binary PPM), made without any image tool.
{ printf 'P6\n512 384\n255\n'; head -c 589824 /dev/urandom; } >"$OUT/photo.ppm"

call() { # client module url calls
    i=0
    while [ "$i" -lt "$4" ]; do
        "$AEX" fetch -C "$APP" --module "$2" --key "$OUT/$1.key" -X POST --no-fresh \
            --data "$OUT/photo.ppm" -o "$OUT/$1-$2.ppm" --receipts "$OUT/$1-$2.receipts" \
            "$3/fn/thumbnail"
        i=$((i + 1))
    done
}
call alice thumb-sgx "$SGX" 3
call bob thumb-sgx "$SGX" 2
call alice thumb-tz "$TZ" 1
call bob thumb-tz "$TZ" 2
head -c 15 "$OUT/alice-thumb-sgx.ppm" | head -2 | tr '\n' ' '; echo "(the thumbnail's header)"

for module in thumb-sgx thumb-tz; do
    url=$SGX; [ "$module" = thumb-tz ] && url=$TZ
    "$AEX" tls export -C "$APP" "$module" --url "$url/" -o "$OUT/$module.pem"
    echo "bill of $module:"
    "$AEX" bill -C "$APP" --module "$module" --cert "$OUT/$module.pem" \
        "$OUT/alice-$module.receipts" "$OUT/bob-$module.receipts"
done
