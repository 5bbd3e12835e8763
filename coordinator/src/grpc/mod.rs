//! The gRPC edge: `LaneService` and `StoreService` turn wire messages into domain types and back.
//!
//! Everything below this module works on `checkout-storage` types; the
//! generated `checkout_proto` types stop here.

use std::sync::Arc;

use checkout_storage::LaneId;
use tonic::{Request, Response, Status};

use crate::{Coordinator, auth::Caller, error::CoordinatorError};

/// Runs a handler with the request's caller and message, and answers with its result or status.
macro_rules! with_caller {
    ($request:ident, |$caller:ident, $message:ident| $body:expr) => {{
        let $caller = match caller_of(&$request) {
            Ok(caller) => caller,
            Err(e) => return Err(Status::from(e)),
        };
        let $message = $request.into_inner();
        respond($body)
    }};
}

mod convert;
mod coupons_api;
mod lane_api;
mod lanes_live;
mod members_api;
mod paging;
mod promotions_api;
mod reconciliations_api;
mod request_ids;
mod store_api;

use convert::lane_id_of;
pub use convert::provider_to_pb;
pub use lanes_live::LaneFeed;

type Result<T, E = CoordinatorError> = std::result::Result<T, E>;

fn respond<T>(result: Result<T>) -> Result<Response<T>, Status> {
    result.map(Response::new).map_err(Status::from)
}

/// What lanes call.
pub struct LaneApi(pub Arc<Coordinator>);

/// What managers call, and the feed of lanes that changed for `WatchLanes`.
pub struct StoreApi(pub Arc<Coordinator>, pub LaneFeed);

/// The caller the gate put in the request's extensions.
fn caller_of<T>(request: &Request<T>) -> Result<Caller> {
    request
        .extensions()
        .get::<Caller>()
        .cloned()
        .ok_or_else(|| CoordinatorError::PermissionDenied("the caller is not known".to_owned()))
}

/// The lane a request names, which must be the caller's own.
fn own_lane(caller: &Caller, claimed: &str) -> Result<LaneId> {
    let lane_id = lane_id_of(claimed)?;
    let own = caller.lane().map_err(|status| CoordinatorError::PermissionDenied(status.message().to_owned()))?;
    if &lane_id != own {
        return Err(CoordinatorError::PermissionDenied(format!(
            "lane {own} acts only on its own lane, not on lane {lane_id}"
        )));
    }
    Ok(lane_id)
}

/// A sale or shift id made by `lane_id`: it starts with the lane id and a dash.
fn of_lane(field_name: &str, lane_id: &LaneId, id: &str) -> Result<()> {
    if id.strip_prefix(lane_id.as_str()).is_some_and(|rest| rest.starts_with('-')) {
        Ok(())
    } else {
        Err(CoordinatorError::PermissionDenied(format!(
            "{field_name} {id} is not of lane {lane_id}: a lane's ids start with its lane id and a dash"
        )))
    }
}

/// A line of free text a person reads (a description, a reason): bounded, and no control or
/// direction-changing characters that could make it read as something else.
fn plain_text(field_name: &str, value: &str, max_chars: usize) -> Result<()> {
    if value.chars().count() > max_chars {
        return Err(CoordinatorError::invalid(field_name, format!("at most {max_chars} characters")));
    }
    let hidden = |c: char| {
        c.is_control()
            || matches!(c, '\u{200B}'..='\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2060}'..='\u{2069}' | '\u{061C}' | '\u{FEFF}')
    };
    if let Some(c) = value.chars().find(|c| hidden(*c)) {
        return Err(CoordinatorError::invalid(
            field_name,
            format!("control and text-direction characters are not allowed (found U+{:04X})", u32::from(c)),
        ));
    }
    Ok(())
}
