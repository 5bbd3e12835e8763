//! `StoreService`'s member methods: enrol a member (their code comes back), block or unblock them, look one
//! up with their points history a page at a time.

use checkout_proto::v1 as pb;
use checkout_storage::{MemberCode, MemberId, MemberRecord, PointsReason, UnixMillis};

use super::{
    Result, StoreApi,
    convert::timestamp,
    paging::{finish_page, page_request},
    plain_text,
    request_ids::{Repeat, answer_once},
};
use crate::{Coordinator, auth::Caller, error::CoordinatorError, services::members::member_name};

fn member_to_pb(c: &Coordinator, member: MemberRecord) -> Result<pb::Member> {
    let points = c.store.points_balance(&member.member_id)?;
    let member_code = MemberCode::issue(&c.store.member_key(), member.member_id.clone()).text();
    Ok(pb::Member {
        member_id: member.member_id.to_string(),
        name: member.name,
        member_code,
        points,
        blocked: member.blocked.is_some(),
        blocked_reason: member.blocked.unwrap_or_default(),
        created_at: Some(timestamp(member.created_at)),
    })
}

fn member_id_of(text: &str) -> Result<MemberId> {
    MemberId::parse(text).map_err(|e| CoordinatorError::invalid("member_id", e))
}

impl StoreApi {
    pub(super) async fn add_member(&self, caller: &Caller, request: pb::AddMemberRequest) -> Result<pb::Member> {
        let name = member_name(&request.name)?.to_owned();
        let method = ("AddMember", Repeat::FirstAnswer);
        answer_once(&self.0, caller, method, &request.request_id, &request, async {
            let member = self.0.store.add_member(&name, UnixMillis::now())?;
            self.0.audit_action(caller, "StoreService/AddMember", member.member_id.as_str(), "enrolled");
            self.0.store.commit().await?;
            tracing::info!(member_id = %member.member_id, "member enrolled");
            member_to_pb(&self.0, member)
        })
        .await
    }

    pub(super) async fn block_member(&self, caller: &Caller, request: pb::BlockMemberRequest) -> Result<pb::Member> {
        let member_id = member_id_of(&request.member_id)?;
        if !request.unblock {
            plain_text("reason", &request.reason, 200)?;
            if request.reason.trim().is_empty() {
                return Err(CoordinatorError::invalid("reason", "say why the member is blocked"));
            }
        }
        let mut member = self
            .0
            .store
            .member(&member_id)?
            .ok_or_else(|| CoordinatorError::NotFound(format!("no member {member_id}")))?;
        member.blocked = (!request.unblock).then(|| request.reason.trim().to_owned());
        self.0.store.put_member(&member)?;
        let detail =
            if request.unblock { "unblocked".to_owned() } else { format!("blocked: {}", request.reason.trim()) };
        self.0.audit_action(caller, "StoreService/BlockMember", member_id.as_str(), &detail);
        self.0.store.commit().await?;
        member_to_pb(&self.0, member)
    }

    pub(super) fn get_member(c: &Coordinator, request: pb::GetMemberRequest) -> Result<pb::GetMemberResponse> {
        let member_id = member_id_of(&request.member_id)?;
        let member =
            c.store.member(&member_id)?.ok_or_else(|| CoordinatorError::NotFound(format!("no member {member_id}")))?;
        let page = page_request("points", member_id.as_str(), request.page_size, &request.page_token)?;
        let found = c.store.points_page(&member_id, page.after.as_deref(), page.size + 1)?;
        let (entries, next_page_token) = finish_page("points", member_id.as_str(), &page, found);
        let points_history = entries
            .into_iter()
            .map(|entry| pb::PointsMovement {
                sale_id: entry.sale_id.to_string(),
                out_trade_no: entry.out_trade_no.to_string(),
                points: entry.points,
                reason: match entry.reason {
                    PointsReason::Sale => "sale".to_owned(),
                    PointsReason::Refund { out_refund_no } => format!("refund {out_refund_no}"),
                    PointsReason::Reversal => "reversal".to_owned(),
                },
                at: Some(timestamp(entry.at)),
            })
            .collect();
        Ok(pb::GetMemberResponse { member: Some(member_to_pb(c, member)?), points_history, next_page_token })
    }
}
