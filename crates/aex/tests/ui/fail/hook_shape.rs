#[derive(Default)]
struct Wrong;

#[aex::module]
impl Wrong {
    #[save]
    fn save(&mut self) -> Vec<u8> {
        Vec::new()
    }

    #[restore]
    fn restore(&mut self, snapshot: Vec<u8>) {
        let _ = snapshot;
    }
}

fn main() {}
