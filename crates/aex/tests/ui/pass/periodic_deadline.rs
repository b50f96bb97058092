//! Periodic entries and deadline handlers, in every accepted shape.

use aex::{Context, Module};

#[derive(Default)]
struct Watch {
    ticks: u32,
}

#[aex::module(outputs(alarm))]
impl Watch {
    #[periodic]
    fn tick(&mut self) {
        self.ticks += 1;
    }

    #[periodic]
    fn report(&mut self, ctx: &mut Context) -> Result<(), String> {
        ctx.emit_json(Self::ALARM, &self.ticks);
        Ok(())
    }

    #[input]
    fn a(&mut self, _v: u32) {}

    #[input]
    fn r#b(&mut self, _bytes: &[u8]) {}

    #[deadline(input = a, every = "500ms")]
    fn a_silent(&mut self, ctx: &mut Context) {
        ctx.emit(Self::ALARM, b"a");
    }

    #[deadline(input = "b", every = "1 m")]
    fn b_silent(&mut self) -> Result<(), std::fmt::Error> {
        Ok(())
    }
}

fn main() {
    assert_eq!(Watch::interface().periodic, ["tick", "report"]);
    let deadlines = Watch::deadlines();
    assert_eq!(deadlines.len(), 2);
    assert_eq!(deadlines[0].input(), "a");
    assert_eq!(deadlines[0].every(), std::time::Duration::from_millis(500));
    assert_eq!(deadlines[1].input(), "b");
    assert_eq!(deadlines[1].every(), std::time::Duration::from_secs(60));
}
