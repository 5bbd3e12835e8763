//! Answers kept for requests that carried a `request_id` (AIP-155), so that a repeat is answered, not done again.

use super::{Result, Store, get, io};
use crate::{AnsweredRequest, UnixMillis};

/// How long an answer is kept: a client retries within minutes, a script run again the next day must not
/// refund twice either. A week of a store's manager actions is a few thousand records.
pub const REQUEST_KEEP_MILLIS: i64 = 7 * 24 * 3600 * 1000;

impl Store {
    /// The answer kept under `key` (the caller, the method and the request id), if it is still kept.
    pub fn answered_request(&self, key: &str) -> Result<Option<AnsweredRequest>> {
        let found: Option<AnsweredRequest> = get(&self.requests, "requests", key.as_bytes())?;
        Ok(found.filter(|answered| UnixMillis::now().0.saturating_sub(answered.at.0) < REQUEST_KEEP_MILLIS))
    }

    /// Keeps the answer to the request `key` (durable with the next commit).
    pub fn put_answered_request(&self, key: &str, answered: &AnsweredRequest) -> Result<()> {
        self.put(&self.requests, ("answered request", "keeping a request's answer"), key.as_bytes(), answered)
    }

    /// Drops the answers older than [`REQUEST_KEEP_MILLIS`] (durable with the next commit); returns how many.
    pub fn forget_old_requests(&self) -> Result<usize> {
        let now = UnixMillis::now().0;
        let mut old = Vec::new();
        for entry in self.requests.iter() {
            let (key, value) = entry.map_err(io("reading"))?;
            let answered: AnsweredRequest = super::decode("requests", &key, &value)?;
            if now.saturating_sub(answered.at.0) >= REQUEST_KEEP_MILLIS {
                old.push(key);
            }
        }
        for key in &old {
            self.folder.write(|| self.requests.remove(key).map(drop).map_err(io("forgetting an old request")))?;
        }
        Ok(old.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_answer_is_kept_across_a_reopen_and_forgotten_when_old() {
        let dir = tempfile::tempdir().unwrap();
        let answered = AnsweredRequest { at: UnixMillis::now(), request_sha256: [1; 32], answer: b"first".to_vec() };
        let old = AnsweredRequest { at: UnixMillis(UnixMillis::now().0 - REQUEST_KEEP_MILLIS - 1), ..answered.clone() };
        {
            let store = Store::open(dir.path()).unwrap();
            store.put_answered_request("manager ann/Refund/r-1", &answered).unwrap();
            store.put_answered_request("manager ann/Refund/r-0", &old).unwrap();
            store.commit_blocking().unwrap();
        }
        let store = Store::open(dir.path()).unwrap();
        assert_eq!(store.answered_request("manager ann/Refund/r-1").unwrap(), Some(answered));
        assert_eq!(store.answered_request("manager ann/Refund/r-0").unwrap(), None, "too old to answer");
        assert_eq!(store.answered_request("manager bob/Refund/r-1").unwrap(), None, "another caller's");
        assert_eq!(store.forget_old_requests().unwrap(), 1);
    }
}
