#[derive(Default)]
struct M;

#[aex::module(outputs(level))]
impl M {
    #[entry]
    fn level(&mut self) {}
}

fn main() {}
