#[derive(Default)]
struct M;

#[aex::module(outputs(a), inputs(b))]
impl M {}

fn main() {}
