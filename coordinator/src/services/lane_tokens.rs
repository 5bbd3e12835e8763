//! Lane tokens: enrolling a lane, rotating and revoking its token, and the audit entry of each.
//!
//! The ledger keeps each lane's token as its SHA-256 (`lane_tokens`), so a
//! restart keeps every lane enrolled. A new lane makes its own token, keeps
//! it, and enrols its hash with the store's enrolment secret: the token never
//! crosses the network, and a lane that crashed before it heard the answer
//! enrols the same hash again. A lane already enrolled (with another token),
//! or revoked, gets a new token only from a manager, which is shown once:
//! the secret cannot take over a lane that exists.

use checkout_storage::{LaneId, LaneTokenRecord, UnixMillis};

use crate::{
    Coordinator,
    auth::{Caller, TokenHash, TokenKind, hash_token, new_token},
    error::CoordinatorError,
};

impl Coordinator {
    /// Enrols a new lane's token (its hash); the same enrolment again is answered again.
    pub(crate) async fn enrol_lane(
        &self,
        lane_id: &LaneId,
        token_sha256: TokenHash,
        caller: &Caller,
    ) -> Result<(), CoordinatorError> {
        let _one_at_a_time = self.issuing.lock().await;
        match self.store.lane_token(lane_id)? {
            Some(record) if !record.revoked && record.token_sha256 == token_sha256 => return Ok(()),
            Some(record) => {
                let why = if record.revoked { "was revoked" } else { "is enrolled already" };
                return Err(CoordinatorError::PermissionDenied(format!(
                    "lane {lane_id} {why}: the enrolment secret enrols only new lanes; a manager issues its token (StoreService/IssueLaneToken)"
                )));
            }
            None => {}
        }
        self.keep_lane_token(lane_id, token_sha256, caller, "LaneService/EnrolLane", "lane enrolled").await
    }

    /// Makes a new token for `lane_id` (a manager's call) and returns it; the lane's earlier token stops working at once.
    pub(crate) async fn issue_lane_token(&self, lane_id: &LaneId, caller: &Caller) -> Result<String, CoordinatorError> {
        let _one_at_a_time = self.issuing.lock().await;
        let token =
            new_token(TokenKind::Lane).map_err(|e| CoordinatorError::Internal(format!("cannot make a token: {e}")))?;
        let detail = match self.store.lane_token(lane_id)? {
            Some(_) => "new token; the earlier one no longer works",
            None => "lane enrolled",
        };
        self.keep_lane_token(lane_id, hash_token(&token), caller, "StoreService/IssueLaneToken", detail).await?;
        Ok(token)
    }

    /// Records `token_sha256` as the lane's token, within the store's cap on lanes; call holding `issuing`.
    async fn keep_lane_token(
        &self,
        lane_id: &LaneId,
        token_sha256: TokenHash,
        caller: &Caller,
        method: &str,
        detail: &str,
    ) -> Result<(), CoordinatorError> {
        let mut lanes: std::collections::HashSet<LaneId> =
            self.store.lane_tokens()?.into_iter().map(|record| record.lane_id).collect();
        lanes.extend(self.configured_lanes.iter().cloned());
        if !lanes.contains(lane_id) {
            let enrolled = lanes.len();
            if enrolled >= self.limits.max_lanes {
                return Err(CoordinatorError::ResourceExhausted(format!(
                    "the store has {enrolled} lanes enrolled, its limit: raise lanes.max_lanes to enrol more"
                )));
            }
        }
        let record = LaneTokenRecord {
            lane_id: lane_id.clone(),
            token_sha256,
            issued_at: UnixMillis::now(),
            issued_by: caller.principal.to_string(),
            revoked: false,
        };
        self.store.put_lane_token(&record)?;
        self.audit_action(caller, method, lane_id.as_str(), detail);
        self.store.commit().await?;
        self.gate.credentials.set_lane_token(lane_id, Some(token_sha256));
        tracing::info!(%lane_id, by = %caller.principal, "lane token kept");
        Ok(())
    }

    /// Revokes `lane_id`'s token; returns false when it had none working.
    pub(crate) async fn revoke_lane_token(&self, lane_id: &LaneId, caller: &Caller) -> Result<bool, CoordinatorError> {
        let _one_at_a_time = self.issuing.lock().await;
        let Some(mut record) = self.store.lane_token(lane_id)? else { return Ok(false) };
        let was_working = !record.revoked;
        record.revoked = true;
        self.store.put_lane_token(&record)?;
        self.audit_action(caller, "StoreService/RevokeLaneToken", lane_id.as_str(), "token revoked");
        self.store.commit().await?;
        self.gate.credentials.set_lane_token(lane_id, None);
        tracing::info!(%lane_id, by = %caller.principal, "lane token revoked");
        Ok(was_working)
    }

    /// Writes a successful manager (or enrolment) action to the audit log; it is durable with the next commit.
    pub(crate) fn audit_action(&self, caller: &Caller, method: &str, target: &str, detail: &str) {
        let method = format!("checkout.v1.{method}");
        self.gate.audit(&caller.principal.to_string(), &caller.peer, &method, target, "ok", detail);
    }
}
