#[derive(Default)]
struct M;

#[aex::module(outputs(level, level))]
impl M {}

fn main() {}
