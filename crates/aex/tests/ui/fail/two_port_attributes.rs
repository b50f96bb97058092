#[derive(Default)]
struct M;

#[aex::module]
impl M {
    #[input]
    #[entry]
    fn both(&mut self) {}
}

fn main() {}
