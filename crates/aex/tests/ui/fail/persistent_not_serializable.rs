// A persistent module's state is sealed with `Module::save`: without `#[save]`/`#[restore]` it
// must be serializable, checked where `persistent` is written.
#[derive(Default)]
struct Opaque {
    _handle: std::cell::Cell<u8>,
}

#[aex::module(persistent)]
impl Opaque {
    #[entry]
    fn poke(&mut self) {}
}

fn main() {}
