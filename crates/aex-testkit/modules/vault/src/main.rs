//! The test kit's `hoard` (`../hoard/src/store.rs`, the same code) declared `persistent`: the
//! state-transfer crash tests run on it too, so that a move of a persistent module is shown
//! to converge with its sealed state intact (issue 16).

include!("../../hoard/src/store.rs");

hoard_module!(persistent);

aex::main!(Hoard);
