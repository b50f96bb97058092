//! State transfer as generated: JSON for serde state, the module's hooks when it has them,
//! nothing otherwise.

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

fn main() {
    let c = Counter { count: 41 };
    let snap = c.save().unwrap().unwrap();
    assert_eq!(snap, br#"{"count":41}"#);
    let mut d = Counter::default();
    d.restore(&snap).unwrap();
    assert_eq!(d.count, 41);
    assert!(d.restore(b"[]").is_err());

    let c = Custom { bytes: vec![1, 2] };
    let mut d = Custom::default();
    // The hooks' own names shadow the trait's: call through `Module`.
    Module::restore(&mut d, &Module::save(&c).unwrap().unwrap()).unwrap();
    assert_eq!(d.bytes, [1, 2]);
    assert_eq!(Module::restore(&mut d, b""), Err("empty".to_string()));

    assert!(Opaque::default().save().is_none());
    assert!(Opaque::default().restore(b"{}").is_err());
}
