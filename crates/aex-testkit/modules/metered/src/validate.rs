//! The function the `metered` test module exposes and `aex-proto-bench`'s `metering` bench
//! measures (`#[path]`-included there): JSON validation, real work that grows with its input.

/// Validates `input` as JSON; answers what it holds (`{"values":N,"depth":D,"strings":S}`,
/// counted by walking the parsed document), or where and why it is not JSON.
pub fn validate_json(input: &[u8]) -> Result<Vec<u8>, String> {
    let value: serde_json::Value = serde_json::from_slice(input)
        .map_err(|e| format!("not JSON: line {}, column {}: {e}", e.line(), e.column()))?;
    let mut stats = Stats::default();
    stats.walk(&value, 1);
    Ok(format!(
        "{{\"values\":{},\"depth\":{},\"strings\":{}}}",
        stats.values, stats.depth, stats.strings
    )
    .into_bytes())
}

#[derive(Default)]
struct Stats {
    values: u64,
    depth: u64,
    strings: u64,
}

impl Stats {
    fn walk(&mut self, v: &serde_json::Value, depth: u64) {
        self.values += 1;
        self.depth = self.depth.max(depth);
        match v {
            serde_json::Value::String(_) => self.strings += 1,
            serde_json::Value::Array(items) => items.iter().for_each(|i| self.walk(i, depth + 1)),
            serde_json::Value::Object(map) => map.values().for_each(|i| self.walk(i, depth + 1)),
            _ => {}
        }
    }
}
