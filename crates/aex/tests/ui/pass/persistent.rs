// A persistent module: a serializable state, or any state with `#[save]`/`#[restore]`.
use serde::{Deserialize, Serialize};

#[derive(Default, Serialize, Deserialize)]
struct Total {
    sum: u64,
}

#[aex::module(persistent, outputs(sum))]
impl Total {
    #[input]
    fn add(&mut self, n: u64) {
        self.sum += n;
    }
}

#[derive(Default)]
struct Raw {
    bytes: std::cell::Cell<u8>,
}

#[aex::module(persistent)]
impl Raw {
    #[entry]
    fn poke(&mut self) {}

    #[save]
    fn save(&self) -> Vec<u8> {
        vec![self.bytes.get()]
    }

    #[restore]
    fn restore(&mut self, snapshot: &[u8]) {
        self.bytes.set(snapshot.first().copied().unwrap_or(0));
    }
}

// Sealed by its signer: an update (new code) opens what this one sealed.
#[derive(Default, Serialize, Deserialize)]
struct Ledger {
    entries: u64,
}

#[aex::module(persistent(signer))]
impl Ledger {
    #[entry]
    fn book(&mut self) {
        self.entries += 1;
    }
}

fn main() {
    use aex::Module;
    assert!(Total::interface().persistent);
    assert!(!Total::interface().seal_by_signer);
    assert!(Raw::interface().persistent);
    assert!(Ledger::interface().persistent);
    assert!(Ledger::interface().seal_by_signer);
}
