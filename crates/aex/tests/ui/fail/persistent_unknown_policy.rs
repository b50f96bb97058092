// `persistent` takes one policy, `signer`.
#[derive(Default, serde::Serialize, serde::Deserialize)]
struct Ledger {
    entries: u64,
}

#[aex::module(persistent(owner))]
impl Ledger {
    #[entry]
    fn book(&mut self) {
        self.entries += 1;
    }
}

fn main() {}
