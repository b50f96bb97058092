#[aex::module]
#[derive(Default)]
struct M;

fn main() {}
