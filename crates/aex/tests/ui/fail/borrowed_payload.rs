#[derive(Default)]
struct M;

#[aex::module]
impl M {
    #[entry]
    fn greet(&mut self, _name: &str) {}
}

fn main() {}
