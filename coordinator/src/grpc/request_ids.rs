//! AIP-155 request ids: a manager's request repeated with the same `request_id` gets the first answer and changes nothing more.

use std::future::Future;

use checkout_storage::{AnsweredRequest, UnixMillis};
use prost::Message;
use sha2::{Digest, Sha256};

use super::Result;
use crate::{Coordinator, auth::Caller, engine::hold, error::CoordinatorError};

/// What a repeat of a request gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Repeat {
    /// The first answer again.
    FirstAnswer,
    /// A refusal with this reason: the answer held a secret shown once, which is not kept.
    Refused(&'static str),
}

/// Runs `act` for `request` unless the caller already sent it with this `request_id`, in which case the
/// first answer is given again (or, for `Repeat::Refused`, refused). An empty `request_id` always runs
/// `act`. Only answers are kept: a request that failed may be sent again with the same id. The same id
/// with another request is refused.
pub(super) async fn answer_once<Request, Answer>(
    c: &Coordinator,
    caller: &Caller,
    (method, repeat): (&str, Repeat),
    request_id: &str,
    request: &Request,
    act: impl Future<Output = Result<Answer>>,
) -> Result<Answer>
where
    Request: Message,
    Answer: Message + Default,
{
    if request_id.is_empty() {
        return act.await;
    }
    let well_formed =
        request_id.len() <= 64 && request_id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if !well_formed {
        return Err(CoordinatorError::invalid("request_id", "1 to 64 letters, digits, '-' or '_' (a UUID as a rule)"));
    }
    let key = format!("{}/{method}/{request_id}", caller.principal);
    let request_sha256: [u8; 32] = Sha256::digest(request.encode_to_vec()).into();
    let _held = hold(&c.request_locks, &key).await;
    if let Some(answered) = c.store.answered_request(&key)? {
        if answered.request_sha256 != request_sha256 {
            return Err(CoordinatorError::Refused {
                reason: "REQUEST_ID_REUSED",
                message: format!("request_id {request_id} was used for another request: use a new one"),
            });
        }
        if let Repeat::Refused(reason) = repeat {
            return Err(CoordinatorError::Refused {
                reason,
                message: format!(
                    "request {request_id} was answered once with a secret that is not kept: send a new request"
                ),
            });
        }
        return Answer::decode(answered.answer.as_slice())
            .map_err(|e| CoordinatorError::Internal(format!("the kept answer to {request_id} cannot be read: {e}")));
    }
    let answer = act.await?;
    let kept = if repeat == Repeat::FirstAnswer { answer.encode_to_vec() } else { Vec::new() };
    let answered = AnsweredRequest { at: UnixMillis::now(), request_sha256, answer: kept };
    c.store.put_answered_request(&key, &answered)?;
    c.store.commit().await?;
    Ok(answer)
}
