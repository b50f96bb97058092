#[derive(Default)]
struct M;

#[aex::module]
impl M {
    #[input]
    fn tick(&mut self) -> u32 {
        1
    }
}

fn main() {}
