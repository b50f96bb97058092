#[derive(Default)]
struct M;

#[aex::module]
impl M {
    #[handler]
    fn get(&self) -> u32 {
        1
    }
}

fn main() {}
