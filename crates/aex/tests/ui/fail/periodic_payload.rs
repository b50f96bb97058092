#[derive(Default)]
struct M;

#[aex::module]
impl M {
    #[periodic]
    fn tick(&mut self, ctx: &mut aex::Context, count: u32) {
        let _ = (ctx, count);
    }
}

fn main() {}
