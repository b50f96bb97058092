//! Telling a changed constitution from a foreign one: when the governor's certificate attests
//! another constitution than the member's, the member asks the governor (verified by its
//! measurement, and attesting that same other digest) whether one of its own proposals put it
//! in force. If so, the member's descriptor is merely out of date and the error says to update
//! it; if not, the governor counts ballots under members or rules the member never agreed to.
//! Either way the command stops: only this read is sent.

use super::{Governor, View};
use aex_governance::CERTIFICATE_KEY_NAME;

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
}
