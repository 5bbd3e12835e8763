//! The till's calls to the coordinator: `Pay` with its retries, and the heartbeat.

use std::time::Duration;

use checkout_proto::v1 as pb;

use super::charge::{Charge, PayFlow};
use crate::{
    connection::{CoordinatorClient, retryable, with_timeout},
    convert,
};

/// How long one `Pay` may take: longer than the store takes to settle a charge whose first answer is
/// unknown (it queries the provider until its query deadline, then reverses), so that a slow answer is
/// waited for rather than asked again.
const PAY_TIMEOUT: Duration = Duration::from_secs(90);
/// Tries of one `Pay` that failed in transit before its outcome counts as uncertain.
const PAY_ATTEMPTS: u32 = 4;
/// The pause before trying a `Pay` again grows by this much with each try.
const PAY_RETRY_STEP: Duration = Duration::from_millis(300);
/// How long a closing lane keeps asking about a charge whose outcome is unknown: the store settles every
/// charge within its query deadline, and this leaves room for that.
const RESOLVE_GIVE_UP: Duration = Duration::from_secs(120);
/// The pause between two questions about an uncertain charge while the lane closes.
const RESOLVE_PAUSE: Duration = Duration::from_secs(1);
/// How long a heartbeat may take: a late one is as good as lost, and the next one comes soon.
const HEARTBEAT_TIMEOUT: Duration = Duration::from_secs(3);

/// Charges the code. Repeating the request is safe: Pay is idempotent for one (sale, attempt).
pub(crate) async fn pay(mut client: CoordinatorClient, charge: &Charge) -> PayFlow {
    let pay = convert::pay_request(charge);
    let mut tries = 0;
    let response = loop {
        tries += 1;
        match client.pay(with_timeout(pay.clone(), PAY_TIMEOUT)).await {
            Ok(response) => break response.into_inner(),
            Err(status) if retryable(&status) && tries < PAY_ATTEMPTS => {
                tracing::warn!(%status, tries, "pay request failed: repeating it");
                tokio::time::sleep(PAY_RETRY_STEP * tries).await;
            }
            Err(status) if retryable(&status) => {
                return PayFlow::Uncertain {
                    message: format!(
                        "store unreachable ({}): payment uncertain, do not hand over the goods yet",
                        status.message()
                    ),
                };
            }
            Err(status) => return PayFlow::Refused { message: status.message().to_owned() },
        }
    };
    convert::pay_flow(response)
}

/// Repeats a Pay whose outcome is unknown until it is known, or until [`RESOLVE_GIVE_UP`] has passed.
pub(crate) async fn resolve_before_closing(client: CoordinatorClient, charge: Charge) -> PayFlow {
    let give_up = tokio::time::Instant::now() + RESOLVE_GIVE_UP;
    loop {
        let outcome = pay(client.clone(), &charge).await;
        if !matches!(outcome, PayFlow::Uncertain { .. }) || tokio::time::Instant::now() >= give_up {
            return outcome;
        }
        tokio::time::sleep(RESOLVE_PAUSE).await;
    }
}

/// How long the store may take to say who a member is: the cashier is waiting.
const LOOKUP_TIMEOUT: Duration = Duration::from_secs(3);

/// Asks the store who the member of a scanned member code is (name and points).
pub(crate) async fn lookup_member(
    mut client: CoordinatorClient,
    request: pb::LookupMemberRequest,
) -> Result<pb::MemberAtTill, tonic::Status> {
    Ok(client.lookup_member(with_timeout(request, LOOKUP_TIMEOUT)).await?.into_inner())
}

/// Asks the store to hold a scanned coupon for the open sale.
pub(crate) async fn hold_coupon(
    mut client: CoordinatorClient,
    request: pb::HoldCouponRequest,
) -> Result<pb::CouponAtTill, tonic::Status> {
    Ok(client.hold_coupon(with_timeout(request, LOOKUP_TIMEOUT)).await?.into_inner())
}

/// Lets a coupon the sale held go (the sale was abandoned).
pub(crate) async fn release_coupon(mut client: CoordinatorClient, request: pb::ReleaseCouponRequest) {
    if let Err(status) = client.release_coupon(with_timeout(request, LOOKUP_TIMEOUT)).await {
        tracing::warn!(%status, "a coupon of an abandoned sale could not be released");
    }
}

/// What a heartbeat's answer tells the lane.
pub(crate) struct HeartbeatAnswer {
    /// Why a manager closed the lane, while they have.
    pub closed: Option<String>,
    /// The store's promotions, when they changed.
    pub promotions: Option<convert::Promotions>,
    /// How the lane's charge under way goes, as the store knows it.
    pub progress: ChargeStep,
}

/// How a charge under way goes (the store's answer to a heartbeat of a paying lane).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) enum ChargeStep {
    /// Nothing known yet.
    #[default]
    Sent,
    /// The provider was asked and has not answered.
    AskingProvider,
    /// The customer is confirming on their phone (a password).
    WaitingForPassword,
    /// The store is asking the provider until it knows.
    Checking,
}

impl ChargeStep {
    /// The step's name on the screens.
    pub fn name(self) -> &'static str {
        match self {
            ChargeStep::Sent => "sent",
            ChargeStep::AskingProvider => "asking_provider",
            ChargeStep::WaitingForPassword => "waiting_for_password",
            ChargeStep::Checking => "checking",
        }
    }
}

/// Tells the coordinator the lane's state; the answer says whether a manager closed the lane (and why), and
/// carries the promotions when the lane's are out of date.
pub(crate) async fn heartbeat(
    mut client: CoordinatorClient,
    request: pb::HeartbeatRequest,
) -> Result<HeartbeatAnswer, tonic::Status> {
    let known = request.promotions_version;
    let answer = client.heartbeat(with_timeout(request, HEARTBEAT_TIMEOUT)).await?.into_inner();
    let progress = match answer.charge_progress() {
        pb::ChargeProgress::Unspecified => ChargeStep::Sent,
        pb::ChargeProgress::AskingProvider => ChargeStep::AskingProvider,
        pb::ChargeProgress::WaitingForPassword => ChargeStep::WaitingForPassword,
        pb::ChargeProgress::Checking => ChargeStep::Checking,
    };
    let promotions = (answer.promotions_version != known)
        .then(|| convert::promotions_from_pb(answer.promotions_version, answer.promotions));
    Ok(HeartbeatAnswer { closed: answer.closed_by_store.then_some(answer.closed_message), promotions, progress })
}
