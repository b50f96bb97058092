//! What the governor does, without the module runtime or the network: it adopts its
//! constitution once, and answers each HTTP request from its book. `main.rs` runs this on the
//! module's thread and releases every answer only after the state it left is committed.

use aex_governance::signed::open;
use aex_governance::{
    Ballot, Book, Constitution, Document, GovernanceError, ProposalId, ProposalView,
};
use serde::{Deserialize, Serialize};

/// What the governor keeps sealed once started: the book (which holds the constitution in
/// force) and the latest time it read.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Held {
    /// The proposals and the constitution.
    pub book: Book,
    /// The latest clock reading used, in milliseconds since the Unix epoch. The host's clock
    /// is not trusted to move forward: the book's clock never goes back below this, so a
    /// clock set back cannot reopen an expired proposal or extend an open one.
    pub clock_ms: u64,
}

impl Held {
    /// The book's time for a call at host time `wall_ms`: never earlier than the last.
    pub fn tick(&mut self, wall_ms: u64) -> u64 {
        self.clock_ms = self.clock_ms.max(wall_ms);
        self.clock_ms
    }
}

/// Takes `constitution` for `application` if the governor holds none yet. Once it holds one,
/// only the very same (same application, same digest) is accepted again, so that `start`
/// after a restart works and nobody can swap the constitution by calling `start`: a change of
/// members or rules is a proposal. After one was applied, `start` must give the constitution
/// in force (`GET /constitution`).
pub fn adopt(
    held: &mut Option<Held>,
    application: &str,
    document: &Document,
) -> Result<[u8; 32], String> {
    let constitution: Constitution = document
        .to_constitution()
        .map_err(|e| format!("the constitution is not valid: {e}"))?;
    let digest = constitution.digest();
    match held {
        None => {
            if application.is_empty() || application.len() > 128 {
                return Err("the application name must have 1 to 128 bytes".into());
            }
            *held = Some(Held {
                book: Book::new(application, constitution),
                clock_ms: 0,
            });
            Ok(digest)
        }
        Some(h) => {
            let (had_app, had) = (h.book.application(), h.book.constitution().digest());
            if had_app != application || had != digest {
                return Err(format!(
                    "this governor already holds constitution {} of application `{had_app}`, \
                     not {} of `{application}`: a constitution is given once, and changes \
                     only through an accepted proposal (after one, give the constitution in \
                     force: GET /constitution shows it)",
                    hex::encode(had),
                    hex::encode(digest)
                ));
            }
            Ok(digest)
        }
    }
}

/// An answer to a request: the status and a JSON or text body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    /// The HTTP status.
    pub status: u16,
    /// The body.
    pub body: Body,
}

/// An answer's body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Body {
    /// `application/json`.
    Json(String),
    /// `text/plain`: a refusal's reason, exactly the book's text.
    Text(String),
}

impl Answer {
    fn json(status: u16, value: &impl Serialize) -> Answer {
        match serde_json::to_string(value) {
            Ok(json) => Answer {
                status,
                body: Body::Json(json),
            },
            Err(e) => Answer::text(500, &format!("cannot encode the answer: {e}")),
        }
    }

    fn text(status: u16, text: &str) -> Answer {
        Answer {
            status,
            body: Body::Text(text.to_owned()),
        }
    }

    fn refused(e: &GovernanceError) -> Answer {
        Answer::text(status_of(e), &e.to_string())
    }
}

/// The HTTP status of a refusal: always a 4xx, the client's doing.
pub fn status_of(e: &GovernanceError) -> u16 {
    match e {
        GovernanceError::Malformed { .. } => 400,
        GovernanceError::BadSignature { .. }
        | GovernanceError::NotMember { .. }
        | GovernanceError::NotProposer { .. } => 403,
        GovernanceError::UnknownProposal { .. } => 404,
        GovernanceError::AlreadyProposed { .. }
        | GovernanceError::Closed { .. }
        | GovernanceError::AlreadyApplied { .. }
        | GovernanceError::NotAccepted { .. } => 409,
        GovernanceError::TooManyOpen { .. } => 429,
        // Wrong application, a ballot for another proposal, the wrong kind or constitution,
        // and whatever a later version of the book refuses.
        _ => 422,
    }
}

/// What `GET /constitution` shows.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConstitutionView {
    /// The governed application.
    pub application: String,
    /// The digest the certificate attests, hex.
    pub digest: String,
    /// The constitution in force.
    pub constitution: Document,
}

/// The routes, as `GET /` lists them.
pub const ROUTES: &str = "aex governor: POST /proposals, POST /ballots, \
POST /proposals/ID/ballots, POST /withdrawals (bodies: COSE_Sign1 by a member); \
GET /proposals, GET /proposals/ID, GET /constitution; GET /identity; \
GET /binaries/SHA256, PUT /binaries/SHA256/OFFSET, POST /bundles, GET /bundles/DIGEST, \
POST /orders, GET /orders/DIGEST; \
GET /proposals/ID/outcome, POST /proposals/ID/apply; GET /ledger; \
POST /constitutions, GET /constitutions/DIGEST; \
PUT /provider-keys/NODE, GET /provider-keys; \
GET /recovery, GET /recovery/backup, POST /recovery/share (a member's signed request); \
recovering: POST /recovery/backup, POST /recovery/shares (a member's signed share)";

/// Answers one request from the book, at host time `wall_ms`. `body` is at most the HTTP
/// server's bound; the book bounds signed objects again.
pub fn answer(held: &mut Held, method: &str, path: &str, body: &[u8], wall_ms: u64) -> Answer {
    let now = held.tick(wall_ms);
    let segments: Vec<&str> = path.trim_end_matches('/').split('/').skip(1).collect();
    let book = &mut held.book;
    match (method, segments.as_slice()) {
        ("GET", [] | [""]) => Answer::text(200, ROUTES),
        ("GET", ["constitution"]) => Answer::json(
            200,
            &ConstitutionView {
                application: book.application().to_owned(),
                digest: hex::encode(book.constitution().digest()),
                constitution: Document::of(book.constitution()),
            },
        ),
        ("GET", ["proposals"]) => {
            // Reading expires what is due, so a list never shows a dead proposal as open.
            book.expire(now);
            let views: Vec<ProposalView> = book
                .records()
                .map(|r| ProposalView::of(r, book.constitution()))
                .collect();
            Answer::json(200, &views)
        }
        ("GET", ["proposals", id]) => {
            book.expire(now);
            match parse_id(id) {
                Ok(id) => match book.get(&id) {
                    Some(r) => Answer::json(200, &ProposalView::of(r, book.constitution())),
                    None => Answer::refused(&GovernanceError::UnknownProposal { id }),
                },
                Err(a) => a,
            }
        }
        ("POST", ["proposals"]) => decided(book, 201, |b| b.propose(body, now).map(|r| r.id)),
        ("POST", ["ballots"]) => decided(book, 200, |b| {
            // The ballot names its proposal; counting it there is what its signer meant.
            let id = open::<Ballot>(body)?.body.proposal;
            b.vote(id, body, now).map(|r| r.id)
        }),
        ("POST", ["proposals", id, "ballots"]) => match parse_id(id) {
            // The caller names the proposal: a ballot signed for another one is refused.
            Ok(id) => decided(book, 200, |b| b.vote(id, body, now).map(|r| r.id)),
            Err(a) => a,
        },
        ("POST", ["withdrawals"]) => decided(book, 200, |b| b.withdraw(body, now).map(|r| r.id)),
        (_, ["proposals"] | ["ballots"] | ["withdrawals"] | ["constitution"]) => {
            Answer::text(405, "method not allowed here; see GET /")
        }
        _ => Answer::text(404, &format!("no route {method} {path}; see GET /")),
    }
}

/// Runs a change on the book; answers the proposal it touched, or the book's refusal.
fn decided(
    book: &mut Book,
    status: u16,
    change: impl FnOnce(&mut Book) -> Result<ProposalId, GovernanceError>,
) -> Answer {
    match change(book) {
        Ok(id) => match book.get(&id) {
            Some(r) => Answer::json(status, &ProposalView::of(r, book.constitution())),
            None => Answer::refused(&GovernanceError::UnknownProposal { id }),
        },
        Err(e) => Answer::refused(&e),
    }
}

fn parse_id(text: &str) -> Result<ProposalId, Answer> {
    hex::decode(text)
        .ok()
        .and_then(|b| <[u8; 32]>::try_from(b).ok())
        .map(ProposalId)
        .ok_or_else(|| Answer::text(400, "a proposal id is 64 hex digits"))
}

#[cfg(test)]
#[path = "service_tests.rs"]
pub(crate) mod tests;
