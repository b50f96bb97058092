//! Arbitrary bytes as function receipts (`aex-metering`): typed errors only, a decoded receipt
//! encodes back to the bytes it came from, and none verifies under a key that never signed.
#![no_main]

use aex_metering::{Receipt, ReceiptKey};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = Receipt::decode_all(data);
    if let Ok((receipt, used)) = Receipt::decode(data) {
        assert_eq!(receipt.encode(), &data[..used]);
        let key = ReceiptKey::from_seed(&[7; 32]).public();
        assert!(receipt.verify(&key).is_err());
    }
});
