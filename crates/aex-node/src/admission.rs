//! Which deployers a node accepts management requests from.
//!
//! A node admits a fixed set of deployer keys (Ed25519 public keys, the output of
//! `aex identity`), given in its configuration or an admit file, or, explicitly and loudly, any
//! deployer ("open mode", for local development). Admission decides only *whether* a proven key
//! may manage anything here; *what* it may manage is its own namespaces (see
//! [`aex_proto::auth`]), so even in open mode one deployer cannot touch another's modules.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use aex_proto::DeployerKey;

use crate::error::ConfigError;

/// The node's admission policy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Admission {
    /// Only these keys.
    Keys(BTreeSet<DeployerKey>),
    /// Any deployer that proves some key (local development).
    Open,
}

impl Admission {
    /// The policy for a configuration; `None` if it admits nobody.
    pub(crate) fn new(keys: &[DeployerKey], open: bool) -> Option<Admission> {
        if open {
            Some(Admission::Open)
        } else if keys.is_empty() {
            None
        } else {
            Some(Admission::Keys(keys.iter().copied().collect()))
        }
    }

    /// Whether `key` may manage applications on this node.
    pub(crate) fn admits(&self, key: &DeployerKey) -> bool {
        match self {
            Admission::Open => true,
            Admission::Keys(keys) => keys.contains(key),
        }
    }

    /// Whether any deployer is admitted.
    pub(crate) fn is_open(&self) -> bool {
        matches!(self, Admission::Open)
    }
}

/// Reads an admit file: one deployer key (64 hex digits) per line; blank lines and text after
/// `#` are ignored. Errors name the file and line.
pub fn read_admit_file(path: &Path) -> Result<Vec<DeployerKey>, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::ReadAdmitFile {
        path: path.to_path_buf(),
        source,
    })?;
    parse_admit_file(&text, path)
}

fn parse_admit_file(text: &str, path: &Path) -> Result<Vec<DeployerKey>, ConfigError> {
    let mut keys = vec![];
    for (i, line) in text.lines().enumerate() {
        let line = line.split('#').next().unwrap_or("").trim();
        if line.is_empty() {
            continue;
        }
        let key = line
            .parse::<DeployerKey>()
            .map_err(|e| ConfigError::AdmitFile {
                path: PathBuf::from(path),
                line: i + 1,
                message: e.to_string(),
            })?;
        keys.push(key);
    }
    Ok(keys)
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: &str = "1111111111111111111111111111111111111111111111111111111111111111";
    const B: &str = "abababababababababababababababababababababababababababababababab";

    #[test]
    fn admit_file_with_comments_and_blanks() {
        let text = format!("# operators\n{A}\n\n  {B}  # alice's laptop\n");
        let keys = parse_admit_file(&text, Path::new("admit.txt")).unwrap();
        assert_eq!(keys, vec![A.parse().unwrap(), B.parse().unwrap()]);
        assert!(parse_admit_file("# nobody\n", Path::new("a"))
            .unwrap()
            .is_empty());
    }

    #[test]
    fn admit_file_errors_name_file_and_line() {
        let text = format!("{A}\n# fine\nnot-a-key\n");
        let e = parse_admit_file(&text, Path::new("/etc/aex/admit")).unwrap_err();
        let msg = e.to_string();
        assert!(msg.starts_with("/etc/aex/admit:3: "), "{msg}");
        assert!(msg.contains("64 hex digits"), "{msg}");
        let e = parse_admit_file(&format!("{}\n", &A[..63]), Path::new("f")).unwrap_err();
        assert!(e.to_string().contains("f:1: "), "{e}");
    }

    #[test]
    fn missing_admit_file_names_the_path() {
        let e = read_admit_file(Path::new("/nonexistent/admit")).unwrap_err();
        assert!(e.to_string().contains("/nonexistent/admit"), "{e}");
    }

    #[test]
    fn policies() {
        let a: DeployerKey = A.parse().unwrap();
        let b: DeployerKey = B.parse().unwrap();
        assert_eq!(Admission::new(&[], false), None);
        let only_a = Admission::new(&[a], false).unwrap();
        assert!(only_a.admits(&a) && !only_a.admits(&b) && !only_a.is_open());
        let open = Admission::new(&[a], true).unwrap();
        assert!(open.admits(&a) && open.admits(&b) && open.is_open());
    }
}
