#[derive(Default)]
struct M;

#[aex::module]
impl M {
    #[input]
    fn reading(&mut self, _celsius: f32) {}

    #[deadline(input = readings, every = "2s")]
    fn silent(&mut self) {}
}

fn main() {}
