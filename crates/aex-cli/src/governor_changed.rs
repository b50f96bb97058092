//! A governor whose constitution is not the one in the member's descriptor. With
//! `--current-constitution`, the member vouches for a second one (a change is open). And
//! telling a changed constitution from a foreign one: when the governor's certificate attests
//! another constitution than the member's, the member asks the governor (verified by its
//! measurement, and attesting that same other digest) whether one of its own proposals put it
//! in force. If so, the member's descriptor is merely out of date and the error says to update
//! it; if not, the governor counts ballots under members or rules the member never agreed to.
//! Either way the command stops: only this read is sent.

use aex_client::Verified;
use aex_governance::CERTIFICATE_KEY_NAME;

use super::{Governor, View};

impl Governor {
    /// The applied proposal (id, action) whose change is the constitution `theirs`, as the
    /// governor shows it; `None` if there is none or the governor cannot be asked.
    pub(super) fn changed_by(&self, theirs: &[u8]) -> Option<(String, String)> {
        let session = aex_client::connect(self.addr, &self.policy, None, self.timeout).ok()?;
        if session.verified().extra(CERTIFICATE_KEY_NAME) != Some(theirs) {
            return None;
        }
        let answer = session.send("GET", "/proposals", b"").ok()?;
        let views: Vec<View> = serde_json::from_slice(&answer.body).ok()?;
        let theirs = hex::encode(theirs);
        views
            .into_iter()
            .find(|v| v.status == "applied" && v.change == theirs)
            .map(|v| (v.id, v.action))
    }

    /// The verified line when the governor attests the constitution `--current-constitution`
    /// gives rather than the descriptor's.
    pub(super) fn verified_current(&self, v: &Verified) -> Option<String> {
        let (c, file) = self.current.as_ref()?;
        if v.extra(CERTIFICATE_KEY_NAME) != Some(&c.digest()[..]) {
            return None;
        }
        Some(format!(
            "governor at {}: measurement {} ({}), constitution {} ({} members), the one \
             --current-constitution {} gives",
            self.url,
            v.measurement.short(16),
            v.kind,
            &hex::encode(c.digest())[..16],
            c.members().len(),
            file.display()
        ))
    }
}
