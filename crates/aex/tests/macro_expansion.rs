//! What `#[aex::module]` generates, compiled and run: every accepted method shape, periodic
//! entries and deadlines, and the state transfer. These were trybuild pass cases; as ordinary
//! tests they build with the rest of the crate's tests instead of in trybuild's own target
//! directory. `tests/ui/pass/main_macro.rs` stays a trybuild case: `aex::main!` must define
//! a binary's `main`.

/// Every accepted method shape, and the interface and handles they generate.
mod shapes {
    use aex::{Context, Module};
    use serde::{Deserialize, Serialize};

    #[derive(Deserialize)]
    struct Reading {
        celsius: f32,
    }

    #[derive(Serialize)]
    struct Summary {
        max: f32,
        unsent: u32,
    }

    #[derive(Default)]
    pub struct Station {
        max: f32,
        /// Events an emit could not send (an input has nobody to tell).
        unsent: u32,
    }

    #[aex::module(outputs(alarm, fanSpeed), requests(fetch_config))]
    impl Station {
        #[input]
        fn raw(&mut self, _data: &[u8]) {}

        #[input]
        fn reading(&mut self, ctx: &mut Context, r: Reading) {
            self.max = self.max.max(r.celsius);
            if r.celsius > 40.0 {
                if ctx.emit(Self::ALARM, b"hot").is_err() {
                    self.unsent += 1;
                }
                if ctx.emit_json(Self::FAN_SPEED, &100u8).is_err() {
                    self.unsent += 1;
                }
            }
        }

        #[input]
        fn checked(&mut self, _data: Vec<u8>) -> Result<(), String> {
            Ok(())
        }

        #[handler]
        fn summary(&mut self) -> Summary {
            Summary {
                max: self.max,
                unsent: self.unsent,
            }
        }

        #[handler]
        fn echo(&mut self, data: Vec<u8>) -> Vec<u8> {
            data
        }

        #[entry]
        fn reset(&mut self, to: Option<f32>) {
            self.max = to.unwrap_or(0.0);
        }

        #[entry]
        fn configure(&mut self, ctx: &mut Context) -> Result<u32, aex::Error> {
            ctx.request_json::<_, u32>(Self::FETCH_CONFIG, &())
        }

        #[entry]
        fn r#type(&mut self) -> &'static str {
            "station"
        }

        /// Not a port: left alone.
        fn helper(&self) -> f32 {
            self.max
        }
    }

    #[test]
    fn interface_and_handles() {
        let interface = Station::interface();
        assert_eq!(interface.outputs, ["alarm", "fanSpeed"]);
        assert_eq!(interface.inputs, ["raw", "reading", "checked"]);
        assert_eq!(interface.requests, ["fetch_config"]);
        assert_eq!(interface.handlers, ["summary", "echo"]);
        assert_eq!(interface.entries, ["reset", "configure", "type"]);
        assert_eq!(Station::ALARM.name(), "alarm");
        assert_eq!(Station::FAN_SPEED.name(), "fanSpeed");
        assert_eq!(Station::FETCH_CONFIG.name(), "fetch_config");
        assert_eq!(Station::default().helper(), 0.0);
        assert_eq!(
            aex::describe_json::<Station>(),
            r#"{"outputs":["alarm","fanSpeed"],"inputs":["raw","reading","checked"],"requests":["fetch_config"],"handlers":["summary","echo"],"entries":["reset","configure","type"],"periodic":[],"persistent":false,"seal_by_signer":false}"#
        );
    }
}

/// Periodic entries and deadline handlers, in every accepted shape.
mod triggers {
    use aex::{Context, Module};

    #[derive(Default)]
    struct Watch {
        ticks: u32,
        /// Alarms an emit could not send (a deadline handler has nobody to tell).
        unsent: u32,
    }

    #[aex::module(outputs(alarm))]
    impl Watch {
        #[periodic]
        fn tick(&mut self) {
            self.ticks += 1;
        }

        #[periodic]
        fn report(&mut self, ctx: &mut Context) -> Result<(), String> {
            ctx.emit_json(Self::ALARM, &(self.ticks, self.unsent))
                .map_err(|e| e.to_string())
        }

        #[input]
        fn a(&mut self, _v: u32) {}

        #[input]
        fn r#b(&mut self, _bytes: &[u8]) {}

        #[deadline(input = a, every = "500ms")]
        fn a_silent(&mut self, ctx: &mut Context) {
            if ctx.emit(Self::ALARM, b"a").is_err() {
                self.unsent += 1;
            }
        }

        #[deadline(input = "b", every = "1 m")]
        fn b_silent(&mut self) -> Result<(), std::fmt::Error> {
            Ok(())
        }
    }

    #[test]
    fn periodic_entries_and_deadlines() {
        assert_eq!(Watch::interface().periodic, ["tick", "report"]);
        let deadlines = Watch::deadlines();
        assert_eq!(deadlines.len(), 2);
        assert_eq!(deadlines[0].input(), "a");
        assert_eq!(deadlines[0].every(), std::time::Duration::from_millis(500));
        assert_eq!(deadlines[1].input(), "b");
        assert_eq!(deadlines[1].every(), std::time::Duration::from_secs(60));
    }
}

/// State transfer as generated: JSON for serde state, the module's hooks when it has them,
/// nothing otherwise.
mod transfer {
    use aex::Module;
    use serde::{Deserialize, Serialize};

    #[derive(Default, Serialize, Deserialize)]
    struct Counter {
        count: u64,
    }

    #[aex::module]
    impl Counter {
        #[entry]
        fn bump(&mut self) -> u64 {
            self.count += 1;
            self.count
        }
    }

    #[derive(Default)]
    struct Custom {
        bytes: Vec<u8>,
    }

    #[aex::module]
    impl Custom {
        #[save]
        fn save(&self) -> Vec<u8> {
            self.bytes.clone()
        }

        #[restore]
        fn restore(&mut self, snapshot: &[u8]) -> Result<(), String> {
            if snapshot.is_empty() {
                return Err("empty".into());
            }
            self.bytes = snapshot.to_vec();
            Ok(())
        }
    }

    #[derive(Default)]
    struct Opaque {
        _socket: Option<std::net::TcpListener>,
    }

    #[aex::module]
    impl Opaque {}

    #[test]
    fn serde_state_travels_as_json() {
        let c = Counter { count: 41 };
        let snap = c.save().unwrap().unwrap();
        assert_eq!(snap, br#"{"count":41}"#);
        let mut d = Counter::default();
        d.restore(&snap).unwrap();
        assert_eq!(d.count, 41);
        assert!(d.restore(b"[]").is_err());
    }

    #[test]
    fn hooks_win_and_their_errors_are_reported() {
        let c = Custom { bytes: vec![1, 2] };
        let mut d = Custom::default();
        // The hooks' own names shadow the trait's: call through `Module`.
        Module::restore(&mut d, &Module::save(&c).unwrap().unwrap()).unwrap();
        assert_eq!(d.bytes, [1, 2]);
        assert_eq!(Module::restore(&mut d, b""), Err("empty".to_string()));
    }

    #[test]
    fn other_state_is_not_transferred() {
        assert!(Opaque::default().save().is_none());
        assert!(Opaque::default().restore(b"{}").is_err());
    }
}
