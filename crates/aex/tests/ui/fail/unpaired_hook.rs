#[derive(Default)]
struct Half;

#[aex::module]
impl Half {
    #[save]
    fn save(&self) -> Vec<u8> {
        Vec::new()
    }
}

fn main() {}
