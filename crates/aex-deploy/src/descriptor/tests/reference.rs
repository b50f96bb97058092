//! docs/DESCRIPTOR.md covers every field the parser accepts: the fields are asked of the
//! parser's own types (`raw.rs`), by deserializing a `RawDescriptor` from a deserializer that
//! records the fields each struct asks for and descends into every one of them, so a field
//! added to the parser and not to the reference fails this test.
//!
//! A struct names its aliases among its fields (`nodes` beside `node`) without saying which
//! they are; given both, it refuses the second as a duplicate. The recorder then learns that
//! the key it just gave is an alias, and plays the document again without it.

use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet};
use std::rc::Rc;

use serde::de::value::{BorrowedStrDeserializer, Error};
use serde::de::{self, DeserializeSeed, MapAccess, SeqAccess, Visitor};
use serde::Deserialize;

use crate::descriptor::raw::RawDescriptor;

const REFERENCE: &str = include_str!("../../../../../docs/DESCRIPTOR.md");

/// The fields each struct asked for, by where it sits: `[]` for the file, `["node"]` for a
/// `[[node]]` entry.
type Fields = BTreeMap<Vec<&'static str>, Vec<&'static str>>;

/// What the recorder learns, shared by all its parts.
#[derive(Default)]
struct Learned {
    fields: Fields,
    /// Keys found to be aliases, by where they sit.
    aliases: BTreeSet<(Vec<&'static str>, &'static str)>,
    /// The last key given, and where.
    last_key: Option<(Vec<&'static str>, &'static str)>,
}

/// A deserializer that plays a document holding every field a struct asks for (aliases
/// known to be aliases left out).
struct Recorder {
    path: Vec<&'static str>,
    seen: Rc<RefCell<Learned>>,
}

impl Recorder {
    fn at(&self, field: &'static str) -> Recorder {
        let mut path = self.path.clone();
        path.push(field);
        Recorder {
            path,
            seen: self.seen.clone(),
        }
    }
}

impl<'de> de::Deserializer<'de> for Recorder {
    type Error = Error;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        visitor.visit_borrowed_str("x")
    }

    fn deserialize_bool<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        visitor.visit_bool(false)
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        visitor.visit_some(self)
    }

    fn deserialize_seq<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        visitor.visit_seq(One(Some(self)))
    }

    fn deserialize_ignored_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        visitor.visit_unit()
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Error> {
        let given: Vec<&'static str> = {
            let mut learned = self.seen.borrow_mut();
            learned.fields.insert(self.path.clone(), fields.to_vec());
            fields
                .iter()
                .copied()
                .filter(|f| !learned.aliases.contains(&(self.path.clone(), f)))
                .collect()
        };
        visitor.visit_map(Every {
            recorder: self,
            fields: given.into_iter(),
            current: None,
        })
    }

    serde::forward_to_deserialize_any! {
        i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string
        bytes byte_buf unit unit_struct newtype_struct tuple
        tuple_struct map enum identifier
    }
}

/// A list of one element.
struct One(Option<Recorder>);

impl<'de> SeqAccess<'de> for One {
    type Error = Error;

    fn next_element_seed<T: DeserializeSeed<'de>>(
        &mut self,
        seed: T,
    ) -> Result<Option<T::Value>, Error> {
        self.0.take().map(|r| seed.deserialize(r)).transpose()
    }
}

/// A map with every field a struct asks for.
struct Every {
    recorder: Recorder,
    fields: std::vec::IntoIter<&'static str>,
    current: Option<&'static str>,
}

impl<'de> MapAccess<'de> for Every {
    type Error = Error;

    fn next_key_seed<K: DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, Error> {
        let Some(field) = self.fields.next() else {
            return Ok(None);
        };
        self.current = Some(field);
        self.recorder.seen.borrow_mut().last_key = Some((self.recorder.path.clone(), field));
        seed.deserialize(BorrowedStrDeserializer::<Error>::new(field))
            .map(Some)
    }

    fn next_value_seed<V: DeserializeSeed<'de>>(&mut self, seed: V) -> Result<V::Value, Error> {
        let field = self.current.take().expect("a key before its value");
        seed.deserialize(self.recorder.at(field))
    }
}

/// Every field of every struct of the parser, by section (`[]` for the file's top level),
/// and the aliases among them.
fn parser_fields() -> (Fields, BTreeSet<&'static str>) {
    let seen = Rc::new(RefCell::new(Learned::default()));
    // One pass per alias found, and a last one that goes through.
    for _ in 0..32 {
        let played = RawDescriptor::deserialize(Recorder {
            path: vec![],
            seen: seen.clone(),
        });
        let mut learned = seen.borrow_mut();
        match played {
            Ok(_) => {
                let aliases = learned.aliases.iter().map(|(_, key)| *key).collect();
                return (std::mem::take(&mut learned.fields), aliases);
            }
            Err(e) if e.to_string().starts_with("duplicate field") => {
                let alias = learned.last_key.take().expect("a key was given");
                learned.aliases.insert(alias);
            }
            Err(e) => panic!("the recorder plays a complete descriptor: {e}"),
        }
    }
    panic!("more than 31 aliases, or a duplicate that is not an alias");
}

/// The reference's sections (`## ` headings, by the key in backquotes, brackets dropped) and
/// the fields in the first column of their tables.
fn reference_fields() -> BTreeMap<String, Vec<String>> {
    let mut sections: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut section = None;
    for line in REFERENCE.lines() {
        if let Some(heading) = line.strip_prefix("## ") {
            section = heading
                .split('`')
                .nth(1)
                .map(|key| key.trim_matches(|c| c == '[' || c == ']').to_owned());
            if let Some(key) = &section {
                sections.entry(key.clone()).or_default();
            }
            continue;
        }
        let (Some(key), Some(row)) = (&section, line.strip_prefix("| `")) else {
            continue;
        };
        let field = row.split('`').next().unwrap_or_default().to_owned();
        sections.get_mut(key).expect("section entered").push(field);
    }
    sections
}

#[test]
fn the_reference_covers_every_field_the_parser_accepts() {
    let (parser, aliases) = parser_fields();
    let reference = reference_fields();
    let sections = &parser[&vec![]];
    assert!(sections.contains(&"node") && sections.contains(&"tenant"));
    let mut missing = vec![];
    let top: Vec<Vec<&'static str>> = sections
        .iter()
        .filter(|s| !aliases.contains(*s))
        .map(|s| vec![*s])
        .collect();
    // Each top-level section, and each section nested in one (`[[governance.member]]`),
    // documented under a `## ` heading naming its dotted path.
    let nested = parser
        .keys()
        .filter(|path| path.len() > 1 && !path.iter().any(|p| aliases.contains(p)));
    for path in top.iter().chain(nested) {
        let section = path.join(".");
        let Some(documented) = reference.get(&section) else {
            missing.push(format!("section `{section}` (a `## ` heading naming it)"));
            continue;
        };
        let fields = parser.get(path).expect("each section is a struct");
        for field in fields {
            if !documented.iter().any(|d| d == field) && !aliases.contains(field) {
                missing.push(format!("`{field}` of `{section}`"));
            }
        }
        // And nothing the parser does not take.
        for field in documented {
            assert!(
                fields.contains(&field.as_str()),
                "docs/DESCRIPTOR.md documents `{field}` in `{section}`, which the parser does \
                 not accept"
            );
        }
    }
    // An alias is named somewhere.
    for alias in &aliases {
        if !REFERENCE.contains(&format!("`{alias}`")) {
            missing.push(format!("the alias `{alias}`"));
        }
    }
    assert!(
        missing.is_empty(),
        "docs/DESCRIPTOR.md misses {}",
        missing.join(", ")
    );
    // The recorder sees what it should: the plural aliases, a renamed field by its name in the
    // file, a field inside an `Option<Vec<_>>`, the retired fields.
    assert!(
        aliases.contains("nodes") && !aliases.contains("node"),
        "{aliases:?}"
    );
    let module = &parser[&vec!["module"]];
    assert!(module.contains(&"crate") && module.contains(&"devices"));
    // Nested sections are seen too, and the rules are exactly governance's kinds of action,
    // and the recovery rule.
    assert!(parser[&vec!["governance", "member"]].contains(&"key_file"));
    let actions: Vec<&str> = aex_governance::Action::ALL
        .iter()
        .map(|a| a.name())
        .chain([aex_governance::RECOVERY])
        .collect();
    assert_eq!(parser[&vec!["governance", "rules"]], actions);
    assert!(parser[&vec!["node"]].contains(&"vendor_id"));
}
