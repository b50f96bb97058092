struct Plain;

#[derive(Default)]
struct M;

#[aex::module]
impl M {
    #[entry]
    fn take(&mut self, _arg: Plain) {}
}

fn main() {}
