//! The gRPC edge: `LaneService` and `StoreService` turn wire messages into domain types and back.
//!
//! Everything below this module works on `checkout-storage` types; the
//! generated `checkout_proto` types stop here.

use std::sync::{Arc, atomic::Ordering};

use crate::refunds::RefundOrder;

use checkout_proto::v1 as pb;
use checkout_storage::{
    Attempt, CashierId, ChargeRecord, ChargeStatus, Currency, LaneId, LaneRecord, Money, OutTradeNo, PaymentCode,
    Product, ProductCode, Provider, RefundRecord, RefundStatus, SaleId, SaleRecord, ShiftId, ShiftRecord, UnixMillis,
};
use tonic::{Request, Response, Status};

use crate::auth::{Caller, parse_hash_hex};

use crate::{
    Coordinator,
    error::{CoordinatorError, field},
    live::{Heartbeat, LaneActivity, LiveLane},
    payments::{PayOrder, price_lines},
    shifts::{ShiftFilter, ShiftReport, close_shift, open_shift, shift_reports},
    totals::{Totals, compute_totals},
};

type Result<T, E = CoordinatorError> = std::result::Result<T, E>;

fn respond<T>(result: Result<T>) -> Result<Response<T>, Status> {
    result.map(Response::new).map_err(Status::from)
}

/// Largest basket a lane may send: far above any real one (quantities cover repeats), well below abuse.
const MAX_LINES: usize = 500;
/// A heartbeat's basket: at most this many items and this much money (100 million yuan).
const MAX_BASKET_ITEMS: u32 = 100_000;
const MAX_BASKET_MINOR_UNITS: i64 = 10_000_000_000;
const MAX_LIST: usize = 10_000;

pub fn money_to_pb(money: Money) -> pb::Money {
    pb::Money { minor_units: money.minor_units, currency: money.currency.to_string() }
}

fn money_from_pb(name: &str, money: Option<pb::Money>) -> Result<Money> {
    let money = money.ok_or_else(|| CoordinatorError::invalid(name, "required"))?;
    let currency = Currency::parse(&money.currency).map_err(field(&format!("{name}.currency")))?;
    Ok(Money::new(money.minor_units, currency))
}

fn timestamp(at: UnixMillis) -> checkout_proto::Timestamp {
    checkout_proto::Timestamp { seconds: at.0.div_euclid(1000), nanos: (at.0.rem_euclid(1000) * 1_000_000) as i32 }
}

fn millis_from_pb(name: &str, at: Option<checkout_proto::Timestamp>) -> Result<Option<UnixMillis>> {
    match at {
        None => Ok(None),
        Some(t) if (0..1_000_000_000).contains(&t.nanos) && t.seconds >= 0 && t.seconds < 253_402_300_800 => {
            Ok(Some(UnixMillis(t.seconds * 1000 + i64::from(t.nanos / 1_000_000))))
        }
        Some(_) => Err(CoordinatorError::invalid(name, "timestamp out of range")),
    }
}

pub fn provider_to_pb(provider: Provider) -> pb::Provider {
    match provider {
        Provider::WeChatPay => pb::Provider::WechatPay,
        Provider::Alipay => pb::Provider::Alipay,
        Provider::UnionPay => pb::Provider::Unionpay,
    }
}

pub fn outcome_to_pb(status: ChargeStatus) -> pb::PaymentOutcome {
    match status {
        ChargeStatus::Paid => pb::PaymentOutcome::Paid,
        ChargeStatus::NewCodeNeeded => pb::PaymentOutcome::NewCodeNeeded,
        ChargeStatus::Failed => pb::PaymentOutcome::Failed,
        // Reversed: nothing was taken (or it went back); the customer may pay again with a fresh code.
        ChargeStatus::Reversed => pb::PaymentOutcome::NewCodeNeeded,
        ChargeStatus::Pending | ChargeStatus::Unknown | ChargeStatus::Reversing => pb::PaymentOutcome::Unknown,
    }
}

fn product_to_pb(product: Product) -> pb::Product {
    pb::Product { gtin: product.gtin.to_string(), name: product.name, price: Some(money_to_pb(product.price)) }
}

fn lines_from_pb(lines: Vec<pb::SaleLine>) -> Result<Vec<(ProductCode, u32)>> {
    if lines.len() > MAX_LINES {
        return Err(CoordinatorError::invalid("lines", format!("at most {MAX_LINES} lines")));
    }
    lines
        .into_iter()
        .enumerate()
        .map(|(i, line)| {
            let gtin = ProductCode::parse(&line.gtin).map_err(field(&format!("lines[{i}].gtin")))?;
            if line.quantity == 0 || line.quantity > 9_999 {
                return Err(CoordinatorError::invalid(format!("lines[{i}].quantity"), "must be 1 to 9999"));
            }
            Ok((gtin, line.quantity))
        })
        .collect()
}

fn charge_to_pb(charge: ChargeRecord) -> pb::Payment {
    pb::Payment {
        out_trade_no: charge.out_trade_no.to_string(),
        lane_id: charge.lane_id.to_string(),
        sale_id: charge.sale_id.to_string(),
        attempt: charge.attempt.get(),
        provider: provider_to_pb(charge.provider).into(),
        masked_code: charge.masked_code.to_string(),
        amount: Some(money_to_pb(charge.amount)),
        outcome: outcome_to_pb(charge.status).into(),
        provider_code: charge.provider_code,
        message: charge.message,
        provider_transaction_id: charge.provider_transaction_id,
        created_at: Some(timestamp(charge.created_at)),
        settled_at: charge.settled_at.map(timestamp),
    }
}

fn sale_to_pb(sale: SaleRecord) -> pb::Sale {
    pb::Sale {
        items: u32::try_from(sale.items()).unwrap_or(u32::MAX),
        lane_id: sale.lane_id.to_string(),
        sale_id: sale.sale_id.to_string(),
        lines: sale.lines.iter().map(|l| pb::SaleLine { gtin: l.gtin.to_string(), quantity: l.quantity }).collect(),
        total: Some(money_to_pb(sale.total)),
        out_trade_no: sale.out_trade_no.to_string(),
        started_at: Some(timestamp(sale.started_at)),
        finished_at: Some(timestamp(sale.finished_at)),
        shift_id: sale.shift_id.map(|s| s.to_string()).unwrap_or_default(),
    }
}

fn shift_report_to_pb(report: ShiftReport) -> pb::ShiftReport {
    let ShiftReport { shift, sales, items, sales_total, payments_declined, by_provider } = report;
    pb::ShiftReport {
        shift_id: shift.shift_id.to_string(),
        lane_id: shift.lane_id.to_string(),
        cashier_id: shift.cashier.to_string(),
        opened_at: Some(timestamp(shift.opened_at)),
        closed_at: shift.closed_at.map(timestamp),
        closed_how: shift.closed_how,
        sales,
        items,
        sales_total: Some(money_to_pb(sales_total)),
        payments_declined,
        by_provider: by_provider
            .into_iter()
            .map(|(provider, (payments, total))| pb::ProviderTakings {
                provider: provider_to_pb(provider).into(),
                payments,
                total: Some(money_to_pb(total)),
            })
            .collect(),
    }
}

/// An optional shift id: empty means none.
fn shift_id_of(value: &str) -> Result<Option<ShiftId>> {
    if value.is_empty() { Ok(None) } else { ShiftId::parse(value).map(Some).map_err(field("shift_id")) }
}

fn activity_from_pb(state: i32) -> Result<LaneActivity> {
    match pb::LaneState::try_from(state) {
        Ok(pb::LaneState::Idle) => Ok(LaneActivity::Idle),
        Ok(pb::LaneState::Scanning) => Ok(LaneActivity::Scanning),
        Ok(pb::LaneState::Paying) => Ok(LaneActivity::Paying),
        Ok(pb::LaneState::Closed) => Ok(LaneActivity::Closed),
        Ok(pb::LaneState::Unspecified) | Err(_) => Err(CoordinatorError::invalid("state", "unknown lane state")),
    }
}

fn activity_to_pb(activity: LaneActivity) -> pb::LaneState {
    match activity {
        LaneActivity::Idle => pb::LaneState::Idle,
        LaneActivity::Scanning => pb::LaneState::Scanning,
        LaneActivity::Paying => pb::LaneState::Paying,
        LaneActivity::Closed => pb::LaneState::Closed,
    }
}

fn lane_id_of(value: &str) -> Result<LaneId> {
    LaneId::parse(value).map_err(field("lane_id"))
}

/// AIP-158: 0 asks for the default page, more than the maximum gets the maximum, a negative size is a mistake.
pub const DEFAULT_PAGE_SIZE: usize = 50;
pub const MAX_PAGE_SIZE: usize = 1_000;

fn page_size_of(page_size: i32) -> Result<usize> {
    match page_size {
        0 => Ok(DEFAULT_PAGE_SIZE),
        n if n < 0 => Err(CoordinatorError::invalid("page_size", "must not be negative")),
        n => Ok((n as usize).min(MAX_PAGE_SIZE)),
    }
}

fn limit_of(limit: u32) -> usize {
    match limit {
        0 => 1000,
        n => (n as usize).min(MAX_LIST),
    }
}

/// Keeps the `limit` newest of `records`, oldest first.
fn newest<T>(mut records: Vec<T>, key: impl Fn(&T) -> UnixMillis, limit: usize) -> Vec<T> {
    records.sort_by_key(|r| key(r));
    let skip = records.len().saturating_sub(limit);
    records.split_off(skip)
}

/// What lanes call.
pub struct LaneApi(pub Arc<Coordinator>);

/// What managers call.
pub struct StoreApi(pub Arc<Coordinator>);

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

impl LaneApi {
    fn registered(&self, lane_id: &LaneId) -> Result<LaneRecord> {
        self.0.store.lane(lane_id)?.ok_or_else(|| {
            CoordinatorError::FailedPrecondition(format!("lane {lane_id} is not registered: call RegisterLane first"))
        })
    }

    async fn enrol(&self, caller: &Caller, request: pb::EnrolLaneRequest) -> Result<pb::EnrolLaneResponse> {
        let lane_id = lane_id_of(&request.lane_id)?;
        let token_sha256 = parse_hash_hex(&request.token_sha256)
            .ok_or_else(|| CoordinatorError::invalid("token_sha256", "the token's SHA-256 as 64 hex digits"))?;
        self.0.enrol_lane(&lane_id, token_sha256, caller).await?;
        Ok(pb::EnrolLaneResponse { lane_id: lane_id.to_string() })
    }

    async fn register(&self, caller: &Caller, request: pb::RegisterLaneRequest) -> Result<pb::RegisterLaneResponse> {
        let lane_id = own_lane(caller, &request.lane_id)?;
        plain_text("description", &request.description, 200)?;
        let c = &self.0;
        let earlier = c.store.lane(&lane_id)?;
        if earlier.as_ref().is_none_or(|lane| lane.description != request.description) {
            let registered_at = earlier.map(|l| l.registered_at).unwrap_or_else(UnixMillis::now);
            c.store.put_lane(&LaneRecord {
                lane_id: lane_id.clone(),
                description: request.description,
                registered_at,
            })?;
            c.store.commit().await?;
        }
        c.live.record(&lane_id, Heartbeat::idle());
        tracing::info!(%lane_id, "lane registered");
        Ok(pb::RegisterLaneResponse {
            store_id: c.store_id.to_string(),
            currency: c.currency.to_string(),
            products: c.store.products()?.into_iter().map(product_to_pb).collect(),
        })
    }

    fn heartbeat(&self, caller: &Caller, request: pb::HeartbeatRequest) -> Result<pb::HeartbeatResponse> {
        let lane_id = own_lane(caller, &request.lane_id)?;
        self.registered(&lane_id)?;
        let basket_total = match request.basket_total {
            Some(total) => {
                let total = money_from_pb("basket_total", Some(total))?;
                if total.currency != self.0.currency {
                    return Err(CoordinatorError::invalid(
                        "basket_total.currency",
                        format!("the store takes {}", self.0.currency),
                    ));
                }
                if !(0..=MAX_BASKET_MINOR_UNITS).contains(&total.minor_units) {
                    return Err(CoordinatorError::invalid("basket_total", "out of range"));
                }
                Some(total)
            }
            None => None,
        };
        if !request.sale_id.is_empty() {
            SaleId::parse(&request.sale_id).map_err(field("sale_id"))?;
            of_lane("sale_id", &lane_id, &request.sale_id)?;
        }
        if request.basket_items > MAX_BASKET_ITEMS {
            return Err(CoordinatorError::invalid("basket_items", format!("at most {MAX_BASKET_ITEMS}")));
        }
        self.0.live.record(
            &lane_id,
            Heartbeat {
                activity: activity_from_pb(request.state)?,
                sale_id: request.sale_id,
                basket_items: request.basket_items,
                basket_total,
                frames_decoded: request.frames_decoded,
                codes_read: request.codes_read,
            },
        );
        Ok(pb::HeartbeatResponse {})
    }

    async fn pay(&self, caller: &Caller, request: pb::PayRequest) -> Result<pb::PayResponse> {
        let lane_id = own_lane(caller, &request.lane_id)?;
        let sale_id = SaleId::parse(&request.sale_id).map_err(field("sale_id"))?;
        of_lane("sale_id", &lane_id, sale_id.as_str())?;
        let attempt = Attempt::new(request.attempt).map_err(field("attempt"))?;
        let code = PaymentCode::parse(&request.payment_code).map_err(field("payment_code"))?;
        let lines = lines_from_pb(request.lines)?;
        let amount = money_from_pb("amount", request.amount)?;
        let shift_id = shift_id_of(&request.shift_id)?;
        if let Some(shift_id) = &shift_id {
            of_lane("shift_id", &lane_id, shift_id.as_str())?;
        }
        let started_at = millis_from_pb("started_at", request.started_at)?.unwrap_or_else(UnixMillis::now);
        self.registered(&lane_id)?;
        if self.0.shutting_down.load(Ordering::SeqCst) {
            return Err(CoordinatorError::ShuttingDown);
        }
        let limits = &self.0.limits;
        self.0.open_sales.admit(&lane_id, &sale_id, limits.max_open_sales_per_lane, limits.max_open_sales)?;
        let order = PayOrder { lane_id, sale_id, attempt, code, lines, amount, shift_id, started_at };
        let charge = self.0.payments.pay(order).await?;
        if charge.status == ChargeStatus::Paid {
            self.0.open_sales.paid(&charge.lane_id, &charge.sale_id);
        }
        Ok(pb::PayResponse {
            outcome: outcome_to_pb(charge.status).into(),
            message: charge.message,
            out_trade_no: charge.out_trade_no.to_string(),
            provider: provider_to_pb(charge.provider).into(),
            masked_code: charge.masked_code.to_string(),
            amount: Some(money_to_pb(charge.amount)),
            provider_code: charge.provider_code,
            provider_transaction_id: charge.provider_transaction_id,
        })
    }

    async fn finish_sale(&self, caller: &Caller, request: pb::FinishSaleRequest) -> Result<pb::FinishSaleResponse> {
        let lane_id = own_lane(caller, &request.lane_id)?;
        let sale_id = SaleId::parse(&request.sale_id).map_err(field("sale_id"))?;
        of_lane("sale_id", &lane_id, sale_id.as_str())?;
        let out_trade_no = OutTradeNo::parse(&request.out_trade_no).map_err(field("out_trade_no"))?;
        let lines = lines_from_pb(request.lines)?;
        let total = money_from_pb("total", request.total)?;
        let now = UnixMillis::now();
        let started_at = millis_from_pb("started_at", request.started_at)?.unwrap_or(now);
        let finished_at = millis_from_pb("finished_at", request.finished_at)?.unwrap_or(now);
        let shift_id = shift_id_of(&request.shift_id)?;
        self.registered(&lane_id)?;
        let c = &self.0;
        if let Some(existing) = c.store.sale(&sale_id)? {
            if existing.out_trade_no != out_trade_no || existing.lane_id != lane_id {
                return Err(CoordinatorError::FailedPrecondition(format!(
                    "sale {sale_id} is already recorded with payment {}",
                    existing.out_trade_no
                )));
            }
            return Ok(pb::FinishSaleResponse { newly_recorded: false });
        }
        let charge = c
            .store
            .charge(&out_trade_no)?
            .ok_or_else(|| CoordinatorError::invalid("out_trade_no", format!("no payment {out_trade_no}")))?;
        if charge.sale_id != sale_id || charge.lane_id != lane_id {
            return Err(CoordinatorError::invalid(
                "out_trade_no",
                format!("payment {out_trade_no} is of another sale"),
            ));
        }
        if charge.status != ChargeStatus::Paid {
            return Err(CoordinatorError::FailedPrecondition(format!(
                "payment {out_trade_no} is not paid ({:?})",
                charge.status
            )));
        }
        let (priced, priced_total) = price_lines(&c.store, &lines)?;
        if priced_total != charge.amount || total != charge.amount {
            return Err(CoordinatorError::FailedPrecondition(format!(
                "sale total {total} (priced {priced_total}) differs from the payment's {}",
                charge.amount
            )));
        }
        let sale =
            SaleRecord { lane_id, sale_id, shift_id, lines: priced, total, out_trade_no, started_at, finished_at };
        let newly_recorded = c.store.insert_sale_if_absent(&sale)?;
        c.store.commit().await?;
        tracing::info!(lane_id = %sale.lane_id, sale_id = %sale.sale_id, total = %sale.total, items = sale.items(), "sale recorded");
        Ok(pb::FinishSaleResponse { newly_recorded })
    }
}

impl Heartbeat {
    fn idle() -> Heartbeat {
        Heartbeat {
            activity: LaneActivity::Idle,
            sale_id: String::new(),
            basket_items: 0,
            basket_total: None,
            frames_decoded: 0,
            codes_read: 0,
        }
    }
}

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

#[tonic::async_trait]
impl pb::lane_service_server::LaneService for LaneApi {
    async fn enrol_lane(
        &self,
        request: Request<pb::EnrolLaneRequest>,
    ) -> Result<Response<pb::EnrolLaneResponse>, Status> {
        with_caller!(request, |caller, message| self.enrol(&caller, message).await)
    }

    async fn register_lane(
        &self,
        request: Request<pb::RegisterLaneRequest>,
    ) -> Result<Response<pb::RegisterLaneResponse>, Status> {
        with_caller!(request, |caller, message| self.register(&caller, message).await)
    }

    async fn heartbeat(
        &self,
        request: Request<pb::HeartbeatRequest>,
    ) -> Result<Response<pb::HeartbeatResponse>, Status> {
        with_caller!(request, |caller, message| self.heartbeat(&caller, message))
    }

    async fn pay(&self, request: Request<pb::PayRequest>) -> Result<Response<pb::PayResponse>, Status> {
        with_caller!(request, |caller, message| self.pay(&caller, message).await)
    }

    async fn finish_sale(
        &self,
        request: Request<pb::FinishSaleRequest>,
    ) -> Result<Response<pb::FinishSaleResponse>, Status> {
        with_caller!(request, |caller, message| self.finish_sale(&caller, message).await)
    }

    async fn open_shift(&self, request: Request<pb::OpenShiftRequest>) -> Result<Response<pb::ShiftReport>, Status> {
        with_caller!(request, |caller, message| self.open_shift(&caller, message).await)
    }

    async fn close_shift(&self, request: Request<pb::CloseShiftRequest>) -> Result<Response<pb::ShiftReport>, Status> {
        with_caller!(request, |caller, message| self.close_shift(&caller, message).await)
    }
}

impl LaneApi {
    async fn open_shift(&self, caller: &Caller, request: pb::OpenShiftRequest) -> Result<pb::ShiftReport> {
        let lane_id = own_lane(caller, &request.lane_id)?;
        let shift_id = ShiftId::parse(&request.shift_id).map_err(field("shift_id"))?;
        of_lane("shift_id", &lane_id, shift_id.as_str())?;
        let cashier = CashierId::parse(&request.cashier_id).map_err(field("cashier_id"))?;
        let opened_at = millis_from_pb("opened_at", request.opened_at)?.unwrap_or_else(UnixMillis::now);
        self.registered(&lane_id)?;
        let shift = ShiftRecord { shift_id, lane_id, cashier, opened_at, closed_at: None, closed_how: String::new() };
        let shift = open_shift(&self.0.store, shift).await?;
        self.report_of(&shift.shift_id)
    }

    async fn close_shift(&self, caller: &Caller, request: pb::CloseShiftRequest) -> Result<pb::ShiftReport> {
        let lane_id = own_lane(caller, &request.lane_id)?;
        let shift_id = ShiftId::parse(&request.shift_id).map_err(field("shift_id"))?;
        of_lane("shift_id", &lane_id, shift_id.as_str())?;
        let closed_at = millis_from_pb("closed_at", request.closed_at)?.unwrap_or_else(UnixMillis::now);
        self.registered(&lane_id)?;
        close_shift(&self.0.store, &lane_id, &shift_id, closed_at).await?;
        self.report_of(&shift_id)
    }

    fn report_of(&self, shift_id: &ShiftId) -> Result<pb::ShiftReport> {
        let shift =
            self.0.store.shift(shift_id)?.ok_or_else(|| CoordinatorError::NotFound(format!("no shift {shift_id}")))?;
        let filter = ShiftFilter { lane_id: Some(shift.lane_id.clone()), open_only: false };
        shift_reports(&self.0.store, self.0.currency, &filter)?
            .into_iter()
            .find(|r| &r.shift.shift_id == shift_id)
            .map(shift_report_to_pb)
            .ok_or_else(|| CoordinatorError::NotFound(format!("no shift {shift_id}")))
    }
}

fn totals_fields(t: &Totals) -> (u64, u64, pb::Money, u64, u64, pb::Money) {
    (t.sales, t.items, money_to_pb(t.sales_total), t.payments_paid, t.payments_declined, money_to_pb(t.paid_total))
}

impl StoreApi {
    fn list_lanes(&self) -> Result<pb::ListLanesResponse> {
        let c = &self.0;
        let (_, per_lane) = compute_totals(c.currency, &c.store.sales()?, &c.store.charges()?);
        let lanes = c
            .store
            .lanes()?
            .into_iter()
            .map(|lane| {
                let live: Option<LiveLane> = c.live.get(&lane.lane_id);
                let totals = per_lane.get(&lane.lane_id).cloned().unwrap_or_else(|| Totals::zero(c.currency));
                let mut out = pb::Lane {
                    lane_id: lane.lane_id.to_string(),
                    description: lane.description,
                    state: pb::LaneState::Closed.into(),
                    sales: totals.sales,
                    sales_total: Some(money_to_pb(totals.sales_total)),
                    ..Default::default()
                };
                if let Some(live) = live {
                    out.online = live.online();
                    out.last_seen = Some(timestamp(live.last_seen));
                    let beat = live.beat;
                    out.state = activity_to_pb(beat.activity).into();
                    out.sale_id = beat.sale_id;
                    out.basket_items = beat.basket_items;
                    out.basket_total = beat.basket_total.map(money_to_pb);
                    out.frames_decoded = beat.frames_decoded;
                    out.codes_read = beat.codes_read;
                }
                out
            })
            .collect();
        Ok(pb::ListLanesResponse { lanes })
    }

    fn totals(&self) -> Result<pb::GetTotalsResponse> {
        let c = &self.0;
        let (store, per_lane) = compute_totals(c.currency, &c.store.sales()?, &c.store.charges()?);
        let (sales, items, sales_total, payments_paid, payments_declined, paid_total) = totals_fields(&store);
        let lanes = per_lane
            .iter()
            .map(|(lane_id, t)| {
                let (sales, items, sales_total, payments_paid, payments_declined, paid_total) = totals_fields(t);
                pb::LaneTotals {
                    lane_id: lane_id.to_string(),
                    sales,
                    items,
                    sales_total: Some(sales_total),
                    payments_paid,
                    payments_declined,
                    paid_total: Some(paid_total),
                }
            })
            .collect();
        let unsettled = c.store.outstanding_charges()?.len() as u64;
        let refunds: Vec<RefundRecord> =
            c.store.refunds()?.into_iter().filter(|r| r.status == RefundStatus::Accepted).collect();
        let refunded_total = refunds.iter().try_fold(Money::zero(c.currency), |sum, r| sum.checked_add(r.amount))?;
        Ok(pb::GetTotalsResponse {
            payments_unsettled: unsettled,
            refunds: refunds.len() as u64,
            refunded_total: Some(money_to_pb(refunded_total)),
            store_id: c.store_id.to_string(),
            sales,
            items,
            sales_total: Some(sales_total),
            payments_paid,
            payments_declined,
            paid_total: Some(paid_total),
            lanes,
        })
    }

    fn lane_filter(lane_id: &str) -> Result<Option<LaneId>> {
        if lane_id.is_empty() { Ok(None) } else { lane_id_of(lane_id).map(Some) }
    }

    fn list_sales(&self, request: pb::ListSalesRequest) -> Result<pb::ListSalesResponse> {
        let lane = Self::lane_filter(&request.lane_id)?;
        let sales: Vec<SaleRecord> =
            self.0.store.sales()?.into_iter().filter(|s| lane.as_ref().is_none_or(|l| &s.lane_id == l)).collect();
        let sales = newest(sales, |s| s.finished_at, limit_of(request.limit));
        Ok(pb::ListSalesResponse { sales: sales.into_iter().map(sale_to_pb).collect() })
    }

    fn list_payments(&self, request: pb::ListPaymentsRequest) -> Result<pb::ListPaymentsResponse> {
        let lane = Self::lane_filter(&request.lane_id)?;
        let charges: Vec<ChargeRecord> =
            self.0.store.charges()?.into_iter().filter(|c| lane.as_ref().is_none_or(|l| &c.lane_id == l)).collect();
        let charges = newest(charges, |c| c.created_at, limit_of(request.limit));
        Ok(pb::ListPaymentsResponse { payments: charges.into_iter().map(charge_to_pb).collect() })
    }
}

fn refund_status_to_pb(status: RefundStatus) -> pb::RefundStatus {
    match status {
        RefundStatus::Accepted => pb::RefundStatus::Accepted,
        RefundStatus::Refused => pb::RefundStatus::Refused,
        RefundStatus::Pending | RefundStatus::Unknown => pb::RefundStatus::Unknown,
    }
}

fn refund_to_pb(refund: RefundRecord) -> pb::Refund {
    pb::Refund {
        out_refund_no: refund.out_refund_no,
        out_trade_no: refund.out_trade_no.to_string(),
        amount: Some(money_to_pb(refund.amount)),
        reason: refund.reason,
        status: refund_status_to_pb(refund.status).into(),
        provider_code: refund.provider_code,
        message: refund.message,
        refund_id: refund.refund_id,
        created_at: Some(timestamp(refund.created_at)),
        lane_id: refund.lane_id.to_string(),
    }
}

impl StoreApi {
    fn list_unsettled(&self) -> Result<pb::ListUnsettledResponse> {
        let now = UnixMillis::now();
        let next_try = UnixMillis(self.0.next_resolve_at.load(Ordering::SeqCst).max(now.0));
        let mut charges = self.0.store.outstanding_charges()?;
        charges.sort_by_key(|c| c.created_at);
        let payments = charges
            .into_iter()
            .map(|charge| pb::UnsettledPayment {
                age_seconds: (now.0.saturating_sub(charge.created_at.0).max(0) / 1000) as u64,
                owed: match charge.status {
                    ChargeStatus::Reversing => "reversal owed".to_owned(),
                    _ => "outcome unknown: query, then reverse if unpaid".to_owned(),
                },
                last_event: charge.events.last().map(|e| e.what.clone()).unwrap_or_default(),
                next_try: Some(timestamp(next_try)),
                payment: Some(charge_to_pb(charge)),
            })
            .collect();
        Ok(pb::ListUnsettledResponse { payments })
    }

    async fn resolve_now(&self, caller: &Caller) -> Result<pb::ResolveNowResponse> {
        let left = self.0.payments.resolve_outstanding().await?;
        self.0.audit_action(caller, "StoreService/ResolveNow", "", &format!("{left} charges still unsettled"));
        self.0.store.commit().await?;
        Ok(pb::ResolveNowResponse { still_unsettled: left as u64 })
    }

    async fn refund(&self, caller: &Caller, request: pb::RefundRequest) -> Result<pb::RefundResponse> {
        let out_trade_no = OutTradeNo::parse(&request.out_trade_no).map_err(field("out_trade_no"))?;
        let amount = money_from_pb("amount", request.amount)?;
        plain_text("reason", &request.reason, 80)?;
        let order = RefundOrder { out_trade_no, out_refund_no: request.out_refund_no, amount, reason: request.reason };
        let (refund, refunded_total) = self.0.payments.refund(order).await?;
        let detail = format!("{} of {}: {:?} ({})", refund.amount, refund.out_trade_no, refund.status, refund.reason);
        self.0.audit_action(caller, "StoreService/Refund", &refund.out_refund_no, &detail);
        self.0.store.commit().await?;
        Ok(pb::RefundResponse { refund: Some(refund_to_pb(refund)), refunded_total: Some(money_to_pb(refunded_total)) })
    }

    async fn issue_lane_token(&self, caller: &Caller, request: pb::IssueLaneTokenRequest) -> Result<pb::LaneToken> {
        let lane_id = lane_id_of(&request.lane_id)?;
        let token = self.0.issue_lane_token(&lane_id, caller).await?;
        Ok(pb::LaneToken { lane_id: lane_id.to_string(), token })
    }

    async fn revoke_lane_token(
        &self,
        caller: &Caller,
        request: pb::RevokeLaneTokenRequest,
    ) -> Result<pb::RevokeLaneTokenResponse> {
        let lane_id = lane_id_of(&request.lane_id)?;
        let revoked = self.0.revoke_lane_token(&lane_id, caller).await?;
        Ok(pb::RevokeLaneTokenResponse { revoked })
    }

    fn list_audit(&self, request: pb::ListAuditRequest) -> Result<pb::ListAuditResponse> {
        let page_size = page_size_of(request.page_size)?;
        let after = match request.page_token.as_str() {
            "" => None,
            token => Some(
                token
                    .parse::<u64>()
                    .map_err(|_| CoordinatorError::invalid("page_token", "not a token of this list"))?,
            ),
        };
        let mut entries = self.0.store.audit_page(after, page_size + 1)?;
        let more = entries.len() > page_size;
        entries.truncate(page_size);
        let next_page_token = match entries.last() {
            Some((sequence, _)) if more => sequence.to_string(),
            _ => String::new(),
        };
        let entries = entries
            .into_iter()
            .map(|(sequence, entry)| pb::AuditEntry {
                sequence,
                at: Some(timestamp(entry.at)),
                caller: entry.caller,
                peer: entry.peer,
                method: entry.method,
                target: entry.target,
                outcome: entry.outcome,
                detail: entry.detail,
            })
            .collect();
        Ok(pb::ListAuditResponse { entries, next_page_token })
    }

    fn list_refunds(&self, request: pb::ListRefundsRequest) -> Result<pb::ListRefundsResponse> {
        let filter = if request.out_trade_no.is_empty() {
            None
        } else {
            Some(OutTradeNo::parse(&request.out_trade_no).map_err(field("out_trade_no"))?)
        };
        let refunds: Vec<RefundRecord> = self
            .0
            .store
            .refunds()?
            .into_iter()
            .filter(|r| filter.as_ref().is_none_or(|f| &r.out_trade_no == f))
            .collect();
        let refunds = newest(refunds, |r| r.created_at, limit_of(request.limit));
        Ok(pb::ListRefundsResponse { refunds: refunds.into_iter().map(refund_to_pb).collect() })
    }
}

#[tonic::async_trait]
impl pb::store_service_server::StoreService for StoreApi {
    async fn list_unsettled(
        &self,
        _: Request<pb::ListUnsettledRequest>,
    ) -> Result<Response<pb::ListUnsettledResponse>, Status> {
        respond(self.list_unsettled())
    }

    async fn resolve_now(
        &self,
        request: Request<pb::ResolveNowRequest>,
    ) -> Result<Response<pb::ResolveNowResponse>, Status> {
        with_caller!(request, |caller, _message| self.resolve_now(&caller).await)
    }

    async fn refund(&self, request: Request<pb::RefundRequest>) -> Result<Response<pb::RefundResponse>, Status> {
        with_caller!(request, |caller, message| self.refund(&caller, message).await)
    }

    async fn issue_lane_token(
        &self,
        request: Request<pb::IssueLaneTokenRequest>,
    ) -> Result<Response<pb::LaneToken>, Status> {
        with_caller!(request, |caller, message| self.issue_lane_token(&caller, message).await)
    }

    async fn revoke_lane_token(
        &self,
        request: Request<pb::RevokeLaneTokenRequest>,
    ) -> Result<Response<pb::RevokeLaneTokenResponse>, Status> {
        with_caller!(request, |caller, message| self.revoke_lane_token(&caller, message).await)
    }

    async fn list_audit(
        &self,
        request: Request<pb::ListAuditRequest>,
    ) -> Result<Response<pb::ListAuditResponse>, Status> {
        respond(self.list_audit(request.into_inner()))
    }

    async fn list_refunds(
        &self,
        request: Request<pb::ListRefundsRequest>,
    ) -> Result<Response<pb::ListRefundsResponse>, Status> {
        respond(self.list_refunds(request.into_inner()))
    }

    async fn list_shifts(
        &self,
        request: Request<pb::ListShiftsRequest>,
    ) -> Result<Response<pb::ListShiftsResponse>, Status> {
        let request = request.into_inner();
        respond(StoreApi::lane_filter(&request.lane_id).and_then(|lane_id| {
            let filter = ShiftFilter { lane_id, open_only: request.open_only };
            let reports = shift_reports(&self.0.store, self.0.currency, &filter)?;
            Ok(pb::ListShiftsResponse { shifts: reports.into_iter().map(shift_report_to_pb).collect() })
        }))
    }

    async fn list_lanes(&self, _: Request<pb::ListLanesRequest>) -> Result<Response<pb::ListLanesResponse>, Status> {
        respond(self.list_lanes())
    }

    async fn get_totals(&self, _: Request<pb::GetTotalsRequest>) -> Result<Response<pb::GetTotalsResponse>, Status> {
        respond(self.totals())
    }

    async fn list_sales(
        &self,
        request: Request<pb::ListSalesRequest>,
    ) -> Result<Response<pb::ListSalesResponse>, Status> {
        respond(self.list_sales(request.into_inner()))
    }

    async fn list_payments(
        &self,
        request: Request<pb::ListPaymentsRequest>,
    ) -> Result<Response<pb::ListPaymentsResponse>, Status> {
        respond(self.list_payments(request.into_inner()))
    }

    async fn list_products(
        &self,
        _: Request<pb::ListProductsRequest>,
    ) -> Result<Response<pb::ListProductsResponse>, Status> {
        respond(
            self.0
                .store
                .products()
                .map(|p| pb::ListProductsResponse { products: p.into_iter().map(product_to_pb).collect() })
                .map_err(CoordinatorError::from),
        )
    }
}
