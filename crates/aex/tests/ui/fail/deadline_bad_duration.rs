#[derive(Default)]
struct M;

#[aex::module]
impl M {
    #[input]
    fn reading(&mut self, _celsius: f32) {}

    #[deadline(input = reading, every = "2 sec")]
    fn silent(&mut self) {}
}

fn main() {}
