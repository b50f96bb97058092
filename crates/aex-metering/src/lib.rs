//! Functions with trusted metering, in the S-FaaS sense: a module exposes functions that
//! outside clients invoke; the module measures each invocation itself and hands back a receipt
//! signed by a key that never leaves it; anyone holding the module's receipt public key bills
//! a set of receipts offline and sees every receipt forged, altered, replayed or dropped.
//!
//! * **Module side** (feature `module`, turned on by the SDK's `metering` feature, as
//!   `aex::metering`): keep a [`Meter`] in the module's state, list the functions as
//!   [`Function`]s, and call [`Meter::invoke`] from a port method with the client's id (the
//!   SHA-256 fingerprint of its key), the function's name and the input. It measures the
//!   handler thread's CPU time, the wall time, the peak heap (with [`count_heap!`] in the
//!   module's `main.rs`) and the bytes in and out, and signs a [`Receipt`].
//!   [`Meter::public_key`] is the key to publish.
//! * **Receipts** ([`Receipt`]): a fixed, versioned binary layout (docs/PROTOCOL.md §12), a
//!   JSON rendering for people, decoding that never panics.
//! * **Over attested HTTPS** ([`answer`]): the receipt travels in the header
//!   [`answer::RECEIPT_HEADER`]; the module attests its receipt key in its certificate under
//!   [`answer::RECEIPT_KEY_NAME`]; a client checks the receipt of its own call with
//!   [`answer::check`] before keeping it.
//! * **Billing** (feature `bill`): [`bill::Billing`] verifies receipts and totals them per
//!   client; `aex bill` is its command.
//!
//! What each measurement is worth on hardware and in simulation: docs/SECURITY.md "Metering and receipts".
//!
//! ```
//! # #[cfg(feature = "module")] {
//! use aex_metering::{ClientId, Function, Meter, ReceiptKey, Signer};
//!
//! fn shout(input: &[u8]) -> Result<Vec<u8>, String> {
//!     Ok(input.to_ascii_uppercase())
//! }
//! const FUNCTIONS: &[Function] = &[Function::new("shout", shout)];
//!
//! // In a module, `meter.invoke(ctx, ..)` sets up the signer from the platform; here a
//! // host-managed key stands in for it.
//! let signer = Signer::new(ReceiptKey::generate(), [0; 32]);
//! let mut meter = Meter::default();
//! let done = meter.invoke_signed(&signer, FUNCTIONS, ClientId([1; 32]), "shout", b"hi").unwrap();
//! assert_eq!(done.result.unwrap(), b"HI");
//! assert_eq!(done.receipt.sequence, 1);
//! done.receipt.verify(&signer.public()).unwrap();
//! # }
//! ```
#![forbid(unsafe_code)]
#![warn(missing_docs)]
#![deny(rustdoc::broken_intra_doc_links)]

pub mod answer;
#[cfg(feature = "bill")]
pub mod bill;
#[cfg(feature = "module")]
#[doc(hidden)]
pub mod heap;
#[cfg(feature = "module")]
mod meter;
mod receipt;

#[cfg(feature = "module")]
pub use meter::{Function, InvokeError, Invoked, Meter, Signer, RECEIPT_KEY_PURPOSE};
pub use receipt::{
    ClientId, DecodeError, KeyId, Receipt, ReceiptKey, ReceiptPublicKey, Usage, VerifyError,
    DOMAIN, FIXED_LEN, MAGIC, MAX_FUNCTION_NAME, VERSION,
};

// The unit tests measure heap peaks: their binary counts its heap as a module does.
#[cfg(all(test, feature = "module"))]
count_heap!();
