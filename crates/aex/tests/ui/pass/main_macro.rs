//! The smallest module, with `aex::main!`.

#[derive(Default)]
struct Empty;

#[aex::module]
impl Empty {}

aex::main!(Empty);
