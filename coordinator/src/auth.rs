//! Who is calling and what they may do: bearer tokens, roles, and the gate every gRPC call passes first.
//!
//! Tokens are random (32 bytes from the system's random source, base64url,
//! with a prefix saying what they are: `ckm_` staff, `ckl_` lane, `cke_`
//! enrolment secret). Only their SHA-256 is kept, in the configuration file
//! or the ledger; a token is looked up by its hash, so checking one costs a
//! hash and a map look-up.
//!
//! [`GateLayer`] wraps the whole gRPC router. It reads the method from the
//! path, lets health and reflection through, and otherwise demands a token
//! whose holder may call that method ([`access_of`]): lanes call
//! `LaneService`, staff call `StoreService` (writes need the `manager` role).
//! The caller goes into the request's extensions for the handlers, which
//! check what only the message says (a lane acts only on its own lane id).
//! Every refused call is written to the audit log, at a bounded rate.

use std::{
    collections::{HashMap, HashSet},
    fmt,
    future::Future,
    io::Read,
    net::SocketAddr,
    pin::Pin,
    sync::{Mutex, RwLock},
    task::{Context, Poll},
    time::Instant,
};

use checkout_storage::{AuditRecord, LaneId, Store, UnixMillis};
use sha2::{Digest, Sha256};
use tonic::{Code, Status};

use crate::error::status;

/// The file in the data folder's credentials folder holding the generated manager token.
pub const MANAGER_TOKEN_FILE: &str = "manager.token";
/// The file in the data folder's credentials folder holding the generated lane enrolment secret.
pub const ENROLMENT_SECRET_FILE: &str = "lane-enrolment.secret";

/// What a staff token may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Everything: refunds, resolving the offline queue, lane tokens, the audit log.
    Manager,
    /// Reads only.
    Viewer,
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Role::Manager => "manager",
            Role::Viewer => "viewer",
        })
    }
}

/// Who a token belongs to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Principal {
    /// A checkout lane; it acts only on its own lane.
    Lane(LaneId),
    /// A person of the store's staff with a role.
    Staff { name: String, role: Role },
    /// The holder of the store's lane enrolment secret: may only enrol a new lane.
    Enroller,
}

impl fmt::Display for Principal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Principal::Lane(lane_id) => write!(f, "lane {lane_id}"),
            Principal::Staff { name, role } => write!(f, "{role} {name}"),
            Principal::Enroller => f.write_str("enrolment secret"),
        }
    }
}

/// The caller of one request, as the gate established it; in the request's extensions.
#[derive(Debug, Clone)]
pub struct Caller {
    pub principal: Principal,
    /// The caller's address, as the coordinator saw it.
    pub peer: String,
}

impl Caller {
    /// The lane this caller is, or `PERMISSION_DENIED`.
    pub fn lane(&self) -> Result<&LaneId, Status> {
        match &self.principal {
            Principal::Lane(lane_id) => Ok(lane_id),
            other => Err(status(Code::PermissionDenied, format!("{other} is not a lane"), "PERMISSION_DENIED", None)),
        }
    }
}

/// A token's SHA-256: what is kept of it.
pub type TokenHash = [u8; 32];

pub fn hash_token(token: &str) -> TokenHash {
    Sha256::digest(token.as_bytes()).into()
}

/// The hex form of a token hash, as the configuration file holds it.
pub fn hash_hex(hash: &TokenHash) -> String {
    hash.iter().map(|b| format!("{b:02x}")).collect()
}

/// Reads a hash written as 64 hex digits.
pub fn parse_hash_hex(text: &str) -> Option<TokenHash> {
    let text = text.trim();
    if text.len() != 64 {
        return None;
    }
    let mut hash = [0u8; 32];
    for (i, byte) in hash.iter_mut().enumerate() {
        *byte = u8::from_str_radix(text.get(2 * i..2 * i + 2)?, 16).ok()?;
    }
    Some(hash)
}

/// What a token is for, shown in its first letters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenKind {
    Staff,
    Lane,
    Enrolment,
}

/// A new random token of `kind`: its prefix, then 32 bytes of the system's random source in base64url
/// (letters mostly: a token never looks like a run of payment-code digits).
pub fn new_token(kind: TokenKind) -> std::io::Result<String> {
    use base64::Engine;
    let mut bytes = [0u8; 32];
    std::fs::File::open("/dev/urandom")?.read_exact(&mut bytes)?;
    let prefix = match kind {
        TokenKind::Staff => "ckm_",
        TokenKind::Lane => "ckl_",
        TokenKind::Enrolment => "cke_",
    };
    Ok(format!("{prefix}{}", base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)))
}

/// A staff member's token, as configured.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StaffToken {
    pub name: String,
    pub role: Role,
    pub token_sha256: TokenHash,
}

/// Every credential the coordinator accepts.
#[derive(Default)]
pub struct Credentials {
    staff: HashMap<TokenHash, (String, Role)>,
    enrolment: HashSet<TokenHash>,
    /// Lanes' current tokens: from the configuration and from the ledger (enrolled, issued, rotated).
    lanes: RwLock<HashMap<TokenHash, LaneId>>,
}

impl Credentials {
    pub fn new(staff: &[StaffToken], enrolment: &[TokenHash], lanes: &[(LaneId, TokenHash)]) -> Credentials {
        Credentials {
            staff: staff.iter().map(|s| (s.token_sha256, (s.name.clone(), s.role))).collect(),
            enrolment: enrolment.iter().copied().collect(),
            lanes: RwLock::new(lanes.iter().map(|(lane, hash)| (*hash, lane.clone())).collect()),
        }
    }

    /// Who holds `token`, if anyone.
    pub fn identify(&self, token: &str) -> Option<Principal> {
        let hash = hash_token(token);
        if let Some((name, role)) = self.staff.get(&hash) {
            return Some(Principal::Staff { name: name.clone(), role: *role });
        }
        if let Some(lane_id) = self.lanes.read().unwrap_or_else(|p| p.into_inner()).get(&hash) {
            return Some(Principal::Lane(lane_id.clone()));
        }
        self.enrolment.contains(&hash).then_some(Principal::Enroller)
    }

    /// Makes `hash` the lane's token, replacing (and so revoking) the one it had, if any.
    pub fn set_lane_token(&self, lane_id: &LaneId, hash: Option<TokenHash>) {
        let mut lanes = self.lanes.write().unwrap_or_else(|p| p.into_inner());
        lanes.retain(|_, lane| lane != lane_id);
        if let Some(hash) = hash {
            lanes.insert(hash, lane_id.clone());
        }
    }

    /// How many lanes have a working token.
    pub fn lanes_with_tokens(&self) -> usize {
        self.lanes.read().unwrap_or_else(|p| p.into_inner()).values().collect::<HashSet<_>>().len()
    }
}

/// Which callers a method admits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Health and reflection: standard tooling works without a token.
    Open,
    /// A lane, on its own lane.
    Lane,
    /// The enrolment secret: a new lane.
    Enrol,
    /// Staff of any role.
    View,
    /// Staff with the manager role.
    Manage,
}

/// What `path` (`/package.Service/Method`) demands. Anything not listed is refused.
pub fn access_of(path: &str) -> Option<Access> {
    const MANAGE: [&str; 16] = [
        "AddMember",
        "BlockMember",
        "IssueCoupon",
        "VoidCoupon",
        "CreatePromotion",
        "EndPromotion",
        "Refund",
        "ResolveNow",
        "IssueLaneToken",
        "RevokeLaneToken",
        "ListAudit",
        "ReversePayment",
        "CloseLane",
        "OpenLane",
        "Reconcile",
        "CloseDay",
    ];
    if path.starts_with("/grpc.health.v1.Health/") || path.starts_with("/grpc.reflection.") {
        return Some(Access::Open);
    }
    if let Some(method) = path.strip_prefix("/checkout.v1.LaneService/") {
        return Some(if method == "EnrolLane" { Access::Enrol } else { Access::Lane });
    }
    if let Some(method) = path.strip_prefix("/checkout.v1.StoreService/") {
        return Some(if MANAGE.contains(&method) { Access::Manage } else { Access::View });
    }
    None
}

/// Whether `principal` may call a method demanding `access`.
fn admits(access: Access, principal: &Principal) -> bool {
    matches!(
        (access, principal),
        (Access::Open, _)
            | (Access::Lane, Principal::Lane(_))
            | (Access::Enrol, Principal::Enroller)
            | (Access::View, Principal::Staff { .. })
            | (Access::Manage, Principal::Staff { role: Role::Manager, .. })
    )
}

/// A token bucket: how many refused calls are written to the audit log and the log, at most.
struct RefusalBudget {
    tokens: f64,
    last: Instant,
    /// Refusals not written one by one since the last one that was.
    suppressed: u64,
}

const REFUSALS_BURST: f64 = 200.0;
const REFUSALS_PER_SECOND: f64 = 20.0;

/// The credentials and the audit log, as every call sees them.
pub struct Gate {
    pub credentials: Credentials,
    store: Store,
    budget: Mutex<RefusalBudget>,
    /// Measurement only (see [`crate::config::Security::unchecked_for_benchmarks`]).
    unchecked: bool,
}

impl Gate {
    pub fn new(credentials: Credentials, store: Store, unchecked: bool) -> Gate {
        Gate {
            unchecked,
            credentials,
            store,
            budget: Mutex::new(RefusalBudget { tokens: REFUSALS_BURST, last: Instant::now(), suppressed: 0 }),
        }
    }

    /// Who may call `method` with these headers, or the refusal. `None`: an open method, no caller needed.
    fn admit(&self, method: &str, headers: &http::HeaderMap, peer: &str) -> Result<Option<Caller>, (Status, String)> {
        let Some(access) = access_of(method) else {
            return Err((denied("no such method is open to callers".to_owned()), "anonymous".into()));
        };
        if access == Access::Open {
            return Ok(None);
        }
        let token = headers
            .get(http::header::AUTHORIZATION)
            .and_then(|value| value.to_str().ok())
            .and_then(|value| value.strip_prefix("Bearer ").or_else(|| value.strip_prefix("bearer ")))
            .map(str::trim);
        if self.unchecked {
            return Ok(Some(Caller { principal: claimed(headers), peer: peer.to_owned() }));
        }
        let Some(token) = token.filter(|t| !t.is_empty()) else {
            return Err((
                unauthenticated("credentials required: send 'authorization: Bearer <token>'"),
                "anonymous".into(),
            ));
        };
        let Some(principal) = self.credentials.identify(token) else {
            return Err((unauthenticated("unknown or revoked token"), "anonymous".into()));
        };
        if !admits(access, &principal) {
            let needed = match access {
                Access::Lane => "a lane token",
                Access::Enrol => "the lane enrolment secret",
                Access::View => "a staff token",
                Access::Manage => "a token with the manager role",
                Access::Open => "nothing",
            };
            return Err((denied(format!("{principal} may not call this: it needs {needed}")), {
                principal.to_string()
            }));
        }
        Ok(Some(Caller { principal, peer: peer.to_owned() }))
    }

    /// Writes an entry to the audit log; a failed write is logged, never fails the call.
    pub fn audit(&self, caller: &str, peer: &str, method: &str, target: &str, outcome: &str, detail: &str) {
        let entry = AuditRecord {
            at: UnixMillis::now(),
            caller: caller.to_owned(),
            peer: peer.to_owned(),
            method: method.trim_start_matches('/').to_owned(),
            target: target.chars().take(80).collect(),
            outcome: outcome.to_owned(),
            detail: detail.chars().take(300).collect(),
        };
        if let Err(e) = self.store.append_audit(&entry) {
            tracing::error!(error = %e, "cannot write to the audit log");
        }
    }

    /// Audits a refused call, within the refusal budget (a flood of refusals must not fill the disk).
    fn audit_refusal(&self, caller: &str, peer: &str, method: &str, status: &Status) {
        let suppressed = {
            let mut budget = self.budget.lock().unwrap_or_else(|p| p.into_inner());
            let now = Instant::now();
            let refill = now.duration_since(budget.last).as_secs_f64() * REFUSALS_PER_SECOND;
            budget.tokens = (budget.tokens + refill).min(REFUSALS_BURST);
            budget.last = now;
            if budget.tokens < 1.0 {
                budget.suppressed += 1;
                return;
            }
            budget.tokens -= 1.0;
            std::mem::take(&mut budget.suppressed)
        };
        let outcome = code_name(status.code());
        let mut detail: String = status.message().chars().take(200).collect();
        if suppressed > 0 {
            detail.push_str(&format!(" (and {suppressed} refused calls before it not logged one by one)"));
        }
        tracing::warn!(%caller, %peer, method, outcome, %detail, "call refused");
        self.audit(caller, peer, method, "", outcome, &detail);
    }
}

/// Who a caller says it is, unchecked (`x-checkout-claim: lane L1`, else a manager): measurement only.
fn claimed(headers: &http::HeaderMap) -> Principal {
    let claim = headers.get("x-checkout-claim").and_then(|v| v.to_str().ok()).unwrap_or_default();
    match claim.strip_prefix("lane ").and_then(|lane| LaneId::parse(lane).ok()) {
        Some(lane_id) => Principal::Lane(lane_id),
        None => Principal::Staff { name: "unchecked".to_owned(), role: Role::Manager },
    }
}

/// The gRPC name of a status code, as the audit log shows it.
pub fn code_name(code: Code) -> &'static str {
    match code {
        Code::Ok => "OK",
        Code::Cancelled => "CANCELLED",
        Code::Unknown => "UNKNOWN",
        Code::InvalidArgument => "INVALID_ARGUMENT",
        Code::DeadlineExceeded => "DEADLINE_EXCEEDED",
        Code::NotFound => "NOT_FOUND",
        Code::AlreadyExists => "ALREADY_EXISTS",
        Code::PermissionDenied => "PERMISSION_DENIED",
        Code::ResourceExhausted => "RESOURCE_EXHAUSTED",
        Code::FailedPrecondition => "FAILED_PRECONDITION",
        Code::Aborted => "ABORTED",
        Code::OutOfRange => "OUT_OF_RANGE",
        Code::Unimplemented => "UNIMPLEMENTED",
        Code::Internal => "INTERNAL",
        Code::Unavailable => "UNAVAILABLE",
        Code::DataLoss => "DATA_LOSS",
        Code::Unauthenticated => "UNAUTHENTICATED",
    }
}

/// Refusals the audit log records: what a caller was not allowed or not able to do.
fn is_refusal(code: Code) -> bool {
    matches!(
        code,
        Code::Unauthenticated
            | Code::PermissionDenied
            | Code::InvalidArgument
            | Code::FailedPrecondition
            | Code::ResourceExhausted
            | Code::OutOfRange
    )
}

/// The request's peer address, from the connection tonic put in its extensions.
fn peer_of<B>(request: &http::Request<B>) -> String {
    use tonic::transport::server::TcpConnectInfo;
    let extensions = request.extensions();
    let address: Option<SocketAddr> = extensions
        .get::<crate::listener::PeerAddress>()
        .map(|peer| peer.0)
        .or_else(|| extensions.get::<TcpConnectInfo>().and_then(TcpConnectInfo::remote_addr));
    address.map_or_else(|| "unknown".to_owned(), |a| a.to_string())
}

/// A malformed or oversized request is the caller's fault: tonic's INTERNAL / OUT_OF_RANGE become INVALID_ARGUMENT.
fn caller_fault(status: &Status) -> Option<Status> {
    let message = status.message();
    match status.code() {
        Code::Internal if message.starts_with("failed to decode Protobuf message") => Some(crate::error::status(
            Code::InvalidArgument,
            "the request is not a well-formed message of this method".to_owned(),
            "MALFORMED_REQUEST",
            None,
        )),
        Code::OutOfRange if message.starts_with("Error, decoded message length too large") => {
            let limit = message.rsplit("the limit is: ").next().unwrap_or("the limit").trim_end_matches(" bytes");
            Some(crate::error::status(
                Code::InvalidArgument,
                format!("the request is larger than the limit of {limit} bytes"),
                "REQUEST_TOO_LARGE",
                None,
            ))
        }
        _ => None,
    }
}

/// Wraps the router: every call passes the [`Gate`] first.
#[derive(Clone)]
pub struct GateLayer(pub std::sync::Arc<Gate>);

impl<S> tower::Layer<S> for GateLayer {
    type Service = GateService<S>;

    fn layer(&self, inner: S) -> GateService<S> {
        GateService { gate: self.0.clone(), inner }
    }
}

#[derive(Clone)]
pub struct GateService<S> {
    gate: std::sync::Arc<Gate>,
    inner: S,
}

type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send>>;

impl<S, B> tower::Service<http::Request<B>> for GateService<S>
where
    S: tower::Service<http::Request<B>, Response = http::Response<tonic::body::Body>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    S::Error: Send + 'static,
    B: Send + 'static,
{
    type Response = http::Response<tonic::body::Body>;
    type Error = S::Error;
    type Future = BoxFuture<Result<Self::Response, Self::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: http::Request<B>) -> Self::Future {
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let gate = self.gate.clone();
        let method = request.uri().path().to_owned();
        let peer = peer_of(&request);
        let caller = match gate.admit(&method, request.headers(), &peer) {
            Ok(caller) => caller,
            Err((status, who)) => {
                gate.audit_refusal(&who, &peer, &method, &status);
                return Box::pin(std::future::ready(Ok(status.into_http())));
            }
        };
        if let Some(caller) = &caller {
            request.extensions_mut().insert(caller.clone());
        }
        Box::pin(async move {
            let response = inner.call(request).await?;
            // An error answered before any message (trailers-only) carries its status in the headers.
            let Some(status) = Status::from_header_map(response.headers()) else { return Ok(response) };
            if status.code() == Code::Ok {
                return Ok(response);
            }
            let (status, response) = match caller_fault(&status) {
                Some(fault) => (fault.clone(), fault.into_http()),
                None => (status, response),
            };
            if is_refusal(status.code()) {
                let who = caller.as_ref().map_or_else(|| "anonymous".to_owned(), |c| c.principal.to_string());
                gate.audit_refusal(&who, &peer, &method, &status);
            }
            Ok(response)
        })
    }
}

fn unauthenticated(message: &str) -> Status {
    status(Code::Unauthenticated, message.to_owned(), "UNAUTHENTICATED", None)
}

fn denied(message: String) -> Status {
    status(Code::PermissionDenied, message, "PERMISSION_DENIED", None)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_method_has_its_callers() {
        let lane = Principal::Lane(LaneId::parse("L1").unwrap());
        let manager = Principal::Staff { name: "ann".into(), role: Role::Manager };
        let viewer = Principal::Staff { name: "bo".into(), role: Role::Viewer };
        let allowed = |path: &str, who: &Principal| access_of(path).is_some_and(|a| admits(a, who));
        assert!(allowed("/checkout.v1.LaneService/Pay", &lane));
        assert!(!allowed("/checkout.v1.LaneService/Pay", &manager));
        assert!(!allowed("/checkout.v1.LaneService/Pay", &Principal::Enroller));
        assert!(allowed("/checkout.v1.LaneService/EnrolLane", &Principal::Enroller));
        assert!(allowed("/checkout.v1.StoreService/ListSales", &viewer));
        assert!(!allowed("/checkout.v1.StoreService/ListSales", &lane));
        assert!(!allowed("/checkout.v1.StoreService/Refund", &viewer));
        assert!(allowed("/checkout.v1.StoreService/Refund", &manager));
        assert!(!allowed("/checkout.v1.StoreService/ListAudit", &viewer));
        assert!(allowed("/grpc.health.v1.Health/Check", &lane));
        assert_eq!(access_of("/grpc.reflection.v1.ServerReflection/ServerReflectionInfo"), Some(Access::Open));
        assert_eq!(access_of("/other.Service/Method"), None);
    }

    #[test]
    fn tokens_are_random_prefixed_and_kept_only_as_hashes() {
        let a = new_token(TokenKind::Lane).unwrap();
        let b = new_token(TokenKind::Lane).unwrap();
        assert!(a.starts_with("ckl_") && a.len() == 4 + 43, "{a}");
        assert_ne!(a, b);
        let hash = hash_token(&a);
        assert_eq!(parse_hash_hex(&hash_hex(&hash)), Some(hash));
        let lane = LaneId::parse("L1").unwrap();
        let credentials = Credentials::new(&[], &[], &[(lane.clone(), hash)]);
        assert_eq!(credentials.identify(&a), Some(Principal::Lane(lane.clone())));
        assert_eq!(credentials.identify(&b), None);
        credentials.set_lane_token(&lane, Some(hash_token(&b)));
        assert_eq!(credentials.identify(&a), None, "the replaced token stops working");
        assert_eq!(credentials.identify(&b), Some(Principal::Lane(lane)));
    }
}
