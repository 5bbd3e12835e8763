//! The gRPC edge: `LaneService` and `StoreService` turn wire messages into domain types and back.
//!
//! Everything below this module works on `checkout-storage` types; the
//! generated `checkout_proto` types stop here.

use std::sync::{Arc, atomic::Ordering};

use crate::refunds::RefundOrder;

use checkout_proto::v1 as pb;
use checkout_storage::{
    Attempt, CashierId, ChargeRecord, ChargeStatus, Currency, LaneId, LaneRecord, Money, OutTradeNo, PaymentCode,
    Product, ProductCode, Provider, RefundRecord, RefundStatus, SaleId, SaleRecord, ShiftId, ShiftRecord, Tally,
    UnixMillis,
};
use tonic::{Request, Response, Status};

use crate::auth::{Caller, parse_hash_hex};

use crate::{
    Coordinator,
    error::{CoordinatorError, field},
    live::{Heartbeat, LaneActivity, LiveLane},
    paging::{finish_page, page_request},
    payments::{PayOrder, price_lines},
    shifts::{ShiftReport, close_shift, open_shift, report_of, shift_report},
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
        report_of(&self.0.store, self.0.currency, shift_id).map(shift_report_to_pb)
    }
}

fn tally_to_pb(lane_id: &LaneId, t: &Tally, currency: Currency) -> pb::LaneTotals {
    pb::LaneTotals {
        lane_id: lane_id.to_string(),
        sales: t.sales,
        items: t.items,
        sales_total: Some(money_to_pb(t.sales_total.of(currency))),
        payments_paid: t.payments_paid,
        payments_declined: t.payments_declined,
        paid_total: Some(money_to_pb(t.paid_total.of(currency))),
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
    fn lane_filter(lane_id: &str) -> Result<Option<LaneId>> {
        if lane_id.is_empty() { Ok(None) } else { lane_id_of(lane_id).map(Some) }
    }

    fn list_lanes(c: &Coordinator, request: pb::ListLanesRequest) -> Result<pb::ListLanesResponse> {
        let page = page_request("lanes", "", request.page_size, &request.page_token)?;
        let found = c.store.lanes_page(page.after.as_deref(), page.size + 1)?;
        let (lanes, next_page_token) = finish_page("lanes", "", &page, found);
        let lanes = lanes
            .into_iter()
            .map(|lane| {
                let live: Option<LiveLane> = c.live.get(&lane.lane_id);
                let totals = c.store.lane_tally(&lane.lane_id);
                let mut out = pb::Lane {
                    lane_id: lane.lane_id.to_string(),
                    description: lane.description,
                    state: pb::LaneState::Closed.into(),
                    sales: totals.sales,
                    sales_total: Some(money_to_pb(totals.sales_total.of(c.currency))),
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
        Ok(pb::ListLanesResponse { lanes, next_page_token })
    }

    fn totals(c: &Coordinator) -> pb::GetTotalsResponse {
        let (store, per_lane) = c.store.totals();
        let refunds = c.store.refund_tally();
        let currency = c.currency;
        pb::GetTotalsResponse {
            store_id: c.store_id.to_string(),
            sales: store.sales,
            items: store.items,
            sales_total: Some(money_to_pb(store.sales_total.of(currency))),
            payments_paid: store.payments_paid,
            payments_declined: store.payments_declined,
            paid_total: Some(money_to_pb(store.paid_total.of(currency))),
            lanes: per_lane.iter().map(|(lane_id, t)| tally_to_pb(lane_id, t, currency)).collect(),
            payments_unsettled: c.store.unsettled_count() as u64,
            refunds: refunds.refunds,
            refunded_total: Some(money_to_pb(refunds.refunded_total.of(currency))),
        }
    }

    fn list_sales(c: &Coordinator, request: pb::ListSalesRequest) -> Result<pb::ListSalesResponse> {
        let lane = Self::lane_filter(&request.lane_id)?;
        let page = page_request("sales", &request.lane_id, request.page_size, &request.page_token)?;
        let found = c.store.sales_page(lane.as_ref(), page.after.as_deref(), page.size + 1)?;
        let (sales, next_page_token) = finish_page("sales", &request.lane_id, &page, found);
        Ok(pb::ListSalesResponse { sales: sales.into_iter().map(sale_to_pb).collect(), next_page_token })
    }

    fn list_payments(c: &Coordinator, request: pb::ListPaymentsRequest) -> Result<pb::ListPaymentsResponse> {
        let lane = Self::lane_filter(&request.lane_id)?;
        let page = page_request("payments", &request.lane_id, request.page_size, &request.page_token)?;
        // Every out_trade_no starts with the store and the sale, whose id starts with its lane.
        let prefix = lane.map(|lane| format!("{}-{lane}-", c.store_id)).unwrap_or_default();
        let found = c.store.charges_page(&prefix, page.after.as_deref(), page.size + 1)?;
        let (charges, next_page_token) = finish_page("payments", &request.lane_id, &page, found);
        Ok(pb::ListPaymentsResponse { payments: charges.into_iter().map(charge_to_pb).collect(), next_page_token })
    }

    fn list_products(c: &Coordinator, request: pb::ListProductsRequest) -> Result<pb::ListProductsResponse> {
        let page = page_request("products", "", request.page_size, &request.page_token)?;
        let found = c.store.products_page(page.after.as_deref(), page.size + 1)?;
        let (products, next_page_token) = finish_page("products", "", &page, found);
        Ok(pb::ListProductsResponse { products: products.into_iter().map(product_to_pb).collect(), next_page_token })
    }

    fn list_unsettled(c: &Coordinator, request: pb::ListUnsettledRequest) -> Result<pb::ListUnsettledResponse> {
        let now = UnixMillis::now();
        let next_try = UnixMillis(c.next_resolve_at.load(Ordering::SeqCst).max(now.0));
        let page = page_request("unsettled", "", request.page_size, &request.page_token)?;
        // The key: the charge's creation (8 bytes, big-endian) and its out_trade_no.
        let after = match page.after.as_deref() {
            None => None,
            Some(key) if key.len() > 8 => {
                let created = i64::from_be_bytes(key[..8].try_into().unwrap_or_default());
                let out_trade_no = std::str::from_utf8(&key[8..]).ok().and_then(|t| OutTradeNo::parse(t).ok());
                let out_trade_no = out_trade_no.ok_or_else(|| CoordinatorError::invalid("page_token", "garbled"))?;
                Some((UnixMillis(created), out_trade_no))
            }
            Some(_) => return Err(CoordinatorError::invalid("page_token", "garbled")),
        };
        let charges = c.store.unsettled_page(after.as_ref(), page.size + 1)?;
        let keyed = charges
            .into_iter()
            .map(|charge| {
                let mut key = charge.created_at.0.to_be_bytes().to_vec();
                key.extend_from_slice(charge.out_trade_no.as_str().as_bytes());
                (key, charge)
            })
            .collect();
        let (charges, next_page_token) = finish_page("unsettled", "", &page, keyed);
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
        Ok(pb::ListUnsettledResponse { payments, next_page_token })
    }

    fn list_refunds(c: &Coordinator, request: pb::ListRefundsRequest) -> Result<pb::ListRefundsResponse> {
        let filter = &request.out_trade_no;
        let page = page_request("refunds", filter, request.page_size, &request.page_token)?;
        let found = if filter.is_empty() {
            c.store.refunds_page(page.after.as_deref(), page.size + 1)?
        } else {
            let out_trade_no = OutTradeNo::parse(filter).map_err(field("out_trade_no"))?;
            c.store.refunds_of_page(&out_trade_no, page.after.as_deref(), page.size + 1)?
        };
        let (refunds, next_page_token) = finish_page("refunds", filter, &page, found);
        Ok(pb::ListRefundsResponse { refunds: refunds.into_iter().map(refund_to_pb).collect(), next_page_token })
    }

    fn list_shifts(c: &Coordinator, request: pb::ListShiftsRequest) -> Result<pb::ListShiftsResponse> {
        let lane = Self::lane_filter(&request.lane_id)?;
        let filter = format!("{}/{}", request.lane_id, request.open_only);
        let page = page_request("shifts", &filter, request.page_size, &request.page_token)?;
        let found = if request.open_only {
            // Open shifts are few (one a lane at most, as a rule): from the ledger's summary.
            let mut open: Vec<(Vec<u8>, ShiftRecord)> = c
                .store
                .open_shifts(lane.as_ref())?
                .into_iter()
                .map(|shift| (shift.shift_id.as_str().as_bytes().to_vec(), shift))
                .filter(|(key, _)| page.after.as_ref().is_none_or(|after| key > after))
                .collect();
            open.sort_by(|a, b| a.0.cmp(&b.0));
            open.truncate(page.size + 1);
            open
        } else {
            c.store.shifts_page(lane.as_ref(), page.after.as_deref(), page.size + 1)?
        };
        let (shifts, next_page_token) = finish_page("shifts", &filter, &page, found);
        let shifts =
            shifts.into_iter().map(|shift| shift_report_to_pb(shift_report(&c.store, c.currency, shift))).collect();
        Ok(pb::ListShiftsResponse { shifts, next_page_token })
    }

    fn list_audit(c: &Coordinator, request: pb::ListAuditRequest) -> Result<pb::ListAuditResponse> {
        let page = page_request("audit", "", request.page_size, &request.page_token)?;
        let after = match page.after.as_deref() {
            None => None,
            Some(key) => Some(u64::from_be_bytes(
                key.try_into().map_err(|_| CoordinatorError::invalid("page_token", "garbled"))?,
            )),
        };
        let found = c.store.audit_page(after, page.size + 1)?;
        let keyed = found.into_iter().map(|(sequence, entry)| (sequence.to_be_bytes().to_vec(), (sequence, entry)));
        let (entries, next_page_token) = finish_page("audit", "", &page, keyed.collect());
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

    /// Runs a read of the ledger on the blocking pool, a few at a time, so that readers never hold up
    /// the async runtime (health checks, charges) however many of them there are.
    async fn read<T: Send + 'static>(
        &self,
        read: impl FnOnce(&Coordinator) -> Result<T> + Send + 'static,
    ) -> Result<Response<T>, Status> {
        let coordinator = self.0.clone();
        let _turn = coordinator
            .readers
            .clone()
            .acquire_owned()
            .await
            .map_err(|_| Status::from(CoordinatorError::ShuttingDown))?;
        let answer = tokio::task::spawn_blocking(move || read(&coordinator))
            .await
            .map_err(|e| Status::from(CoordinatorError::Internal(format!("a read failed: {e}"))))?;
        respond(answer)
    }
}

#[tonic::async_trait]
impl pb::store_service_server::StoreService for StoreApi {
    async fn list_lanes(
        &self,
        request: Request<pb::ListLanesRequest>,
    ) -> Result<Response<pb::ListLanesResponse>, Status> {
        let request = request.into_inner();
        self.read(move |c| Self::list_lanes(c, request)).await
    }

    async fn get_totals(&self, _: Request<pb::GetTotalsRequest>) -> Result<Response<pb::GetTotalsResponse>, Status> {
        respond(Ok(Self::totals(&self.0)))
    }

    async fn list_sales(
        &self,
        request: Request<pb::ListSalesRequest>,
    ) -> Result<Response<pb::ListSalesResponse>, Status> {
        let request = request.into_inner();
        self.read(move |c| Self::list_sales(c, request)).await
    }

    async fn list_payments(
        &self,
        request: Request<pb::ListPaymentsRequest>,
    ) -> Result<Response<pb::ListPaymentsResponse>, Status> {
        let request = request.into_inner();
        self.read(move |c| Self::list_payments(c, request)).await
    }

    async fn list_products(
        &self,
        request: Request<pb::ListProductsRequest>,
    ) -> Result<Response<pb::ListProductsResponse>, Status> {
        let request = request.into_inner();
        self.read(move |c| Self::list_products(c, request)).await
    }

    async fn list_unsettled(
        &self,
        request: Request<pb::ListUnsettledRequest>,
    ) -> Result<Response<pb::ListUnsettledResponse>, Status> {
        let request = request.into_inner();
        self.read(move |c| Self::list_unsettled(c, request)).await
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

    async fn list_refunds(
        &self,
        request: Request<pb::ListRefundsRequest>,
    ) -> Result<Response<pb::ListRefundsResponse>, Status> {
        let request = request.into_inner();
        self.read(move |c| Self::list_refunds(c, request)).await
    }

    async fn list_shifts(
        &self,
        request: Request<pb::ListShiftsRequest>,
    ) -> Result<Response<pb::ListShiftsResponse>, Status> {
        let request = request.into_inner();
        self.read(move |c| Self::list_shifts(c, request)).await
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
        let request = request.into_inner();
        self.read(move |c| Self::list_audit(c, request)).await
    }
}
