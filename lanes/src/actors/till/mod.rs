//! The till: the lane's payment actor. It keeps the open sale, charges the customer's code through the
//! coordinator, puts paid sales and the cashier's shift in the outbox, and reports the lane's summary.

use std::{collections::HashMap, time::Duration};

use crate::{
    connection::{CoordinatorClient, retryable},
    events::{LaneEvent, LaneEventKind, LaneSummary},
    messages::{FrameDone, FramesEnded, PaymentCodeCharged},
};
use actix::prelude::*;
use checkout_proto::{Timestamp, v1 as pb};
use checkout_storage::{
    CashierId, Currency, FinishedSale, LaneId, LaneStore, Money, OutTradeNo, OutboxItem, PaymentCode, Product,
    ProductCode, SaleId, ScannedCode, ShiftId, ShiftRecord, UnixMillis,
};
use tokio::sync::{mpsc::UnboundedSender, oneshot};

struct OpenSale {
    sale_id: SaleId,
    /// Basket lines in scan order; scanning a product again adds to its quantity.
    lines: Vec<(ProductCode, u32)>,
    total: Money,
    attempts: u32,
    started_at: UnixMillis,
}

impl OpenSale {
    fn items(&self) -> u32 {
        self.lines.iter().map(|(_, q)| q).sum()
    }
}

/// The lane's payment actor: the basket, the charge, the cashier's shift and the outbox.
pub struct Till {
    lane_id: LaneId,
    client: CoordinatorClient,
    catalog: HashMap<ProductCode, Product>,
    currency: Currency,
    sale: Option<OpenSale>,
    paying: bool,
    last_sale_millis: i64,
    summary: LaneSummary,
    heartbeat_every: Duration,
    events: Option<UnboundedSender<LaneEvent>>,
    done: Option<oneshot::Sender<LaneSummary>>,
    /// Paid sales not yet delivered to the coordinator, kept on disk.
    outbox: LaneStore,
    delivering: bool,
    /// Whether the coordinator answered the last heartbeat. Wallet payments need it:
    /// a code expires within a minute and cannot be charged later.
    reachable: bool,
    /// A charge whose outcome is not known yet: the lane asks again (same request, so never a
    /// second charge) until it is, and takes no other code or item meanwhile.
    unsettled: Option<pb::PayRequest>,
    cashier: CashierId,
    /// The cashier's shift, open from the lane's start to its stop.
    shift: Option<ShiftId>,
    /// Frame-to-scan latencies seen so far.
    scan_latencies: Vec<Duration>,
    /// Told of every payment code charged (the scanner, so that it never hands one over again).
    charges_to: Recipient<PaymentCodeCharged>,
}

/// What the till needs besides its lane's identity.
pub struct TillSetup {
    /// The lane's client of the coordinator, registered.
    pub client: CoordinatorClient,
    /// The store's catalog.
    pub products: Vec<Product>,
    /// The store's currency.
    pub currency: Currency,
    /// How often to send a heartbeat, deliver the outbox and ask about an uncertain charge.
    pub heartbeat_every: Duration,
    /// Where the lane's events go, besides the log.
    pub events: Option<UnboundedSender<LaneEvent>>,
    /// The lane's outbox (and its current shift).
    pub outbox: LaneStore,
    /// The cashier signed on.
    pub cashier: CashierId,
}

impl Till {
    /// A till for `lane_id` that tells `charges_to` (the scanner) of every code it charges; `done` gets the
    /// lane's summary when it has closed.
    pub fn new(
        lane_id: LaneId,
        setup: TillSetup,
        charges_to: Recipient<PaymentCodeCharged>,
        done: oneshot::Sender<LaneSummary>,
    ) -> Till {
        let TillSetup { client, products, currency, heartbeat_every, events, outbox, cashier } = setup;
        let summary = LaneSummary::new(lane_id.clone(), currency);
        Till {
            lane_id,
            client,
            catalog: products.into_iter().map(|p| (p.gtin.clone(), p)).collect(),
            currency,
            sale: None,
            paying: false,
            last_sale_millis: 0,
            summary,
            heartbeat_every,
            events,
            done: Some(done),
            outbox,
            delivering: false,
            reachable: true,
            unsettled: None,
            cashier,
            shift: None,
            scan_latencies: Vec::new(),
            charges_to,
        }
    }

    fn show(&self, kind: LaneEventKind) {
        let event = LaneEvent { lane_id: self.lane_id.clone(), kind };
        tracing::info!(lane_id = %self.lane_id, "{event}");
        if let Some(events) = &self.events {
            let _ = events.send(event);
        }
    }

    /// Resumes the shift a crash left open for this lane's cashier, or opens a new one
    /// (closing one of another cashier). Openings and closings go through the outbox.
    fn sign_on(&mut self) {
        let now = UnixMillis::now();
        let resumed = match self.outbox.current_shift() {
            Ok(Some(shift)) if shift.cashier == self.cashier && shift.lane_id == self.lane_id => Some(shift),
            Ok(Some(_)) => {
                if let Err(e) = self.outbox.close_shift(now) {
                    self.show(LaneEventKind::Problem { message: format!("cannot close the earlier shift: {e}") });
                }
                None
            }
            Ok(None) => None,
            Err(e) => {
                self.show(LaneEventKind::Problem { message: format!("cannot read the lane's shift: {e}") });
                None
            }
        };
        if let Some(shift) = resumed {
            self.shift = Some(shift.shift_id.clone());
            let (shift_id, cashier) = (shift.shift_id.to_string(), shift.cashier.to_string());
            self.show(LaneEventKind::ShiftOpened { shift_id, cashier, resumed: true });
            return;
        }
        let id = self.new_id();
        let shift_id = ShiftId::parse(&id).unwrap_or_else(|_| unreachable!("shift id {id} out of shape"));
        let shift = ShiftRecord {
            shift_id: shift_id.clone(),
            lane_id: self.lane_id.clone(),
            cashier: self.cashier.clone(),
            opened_at: now,
            closed_at: None,
            closed_how: String::new(),
        };
        match self.outbox.open_shift(&shift) {
            Ok(()) => {
                self.shift = Some(shift_id.clone());
                let cashier = self.cashier.to_string();
                self.show(LaneEventKind::ShiftOpened { shift_id: shift_id.to_string(), cashier, resumed: false });
            }
            Err(e) => self.show(LaneEventKind::Problem { message: format!("cannot open the cashier's shift: {e}") }),
        }
    }

    /// Closes the cashier's shift; the store's report comes back when the outbox delivers it.
    fn sign_off(&mut self) {
        if self.shift.take().is_some()
            && let Err(e) = self.outbox.close_shift(UnixMillis::now())
        {
            self.show(LaneEventKind::Problem { message: format!("cannot close the cashier's shift: {e}") });
        }
    }

    fn new_sale_id(&mut self) -> SaleId {
        let id = self.new_id();
        // A lane id has at most 6 characters and the millis at most 9 base-36 digits: always valid.
        SaleId::parse(&id).unwrap_or_else(|_| unreachable!("sale id {id} out of shape"))
    }

    /// An id unique to this lane: the lane and the time in base 36, strictly increasing.
    fn new_id(&mut self) -> String {
        let millis = UnixMillis::now().0.max(self.last_sale_millis + 1);
        self.last_sale_millis = millis;
        let mut n = millis as u64;
        let mut digits = Vec::new();
        while n > 0 {
            digits.push(b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"[(n % 36) as usize]);
            n /= 36;
        }
        digits.reverse();
        format!("{}-{}", self.lane_id, String::from_utf8_lossy(&digits))
    }

    fn add_product(&mut self, gtin: ProductCode) {
        let Some(product) = self.catalog.get(&gtin).cloned() else {
            self.show(LaneEventKind::UnknownProduct { gtin: gtin.to_string() });
            return;
        };
        if self.sale.is_none() {
            let sale_id = self.new_sale_id();
            self.sale = Some(OpenSale {
                sale_id,
                lines: Vec::new(),
                total: Money::zero(self.currency),
                attempts: 0,
                started_at: UnixMillis::now(),
            });
        }
        let Some(sale) = self.sale.as_mut() else { return };
        let total = match sale.total.checked_add(product.price) {
            Ok(total) => total,
            Err(e) => {
                let message = format!("cannot add {}: {e}", product.name);
                self.show(LaneEventKind::Problem { message });
                return;
            }
        };
        sale.total = total;
        match sale.lines.iter_mut().find(|(g, _)| *g == gtin) {
            Some((_, quantity)) => *quantity += 1,
            None => sale.lines.push((gtin, 1)),
        }
        let event = LaneEventKind::ItemAdded {
            sale_id: sale.sale_id.to_string(),
            name: product.name,
            price: product.price,
            basket_items: sale.items(),
            basket_total: sale.total,
        };
        self.show(event);
    }

    fn heartbeat_request(&self) -> pb::HeartbeatRequest {
        let state = match (&self.sale, self.paying, self.done.is_none()) {
            (_, _, true) => pb::LaneState::Closed,
            (_, true, _) => pb::LaneState::Paying,
            (Some(_), _, _) => pb::LaneState::Scanning,
            (None, _, _) => pb::LaneState::Idle,
        };
        pb::HeartbeatRequest {
            lane_id: self.lane_id.to_string(),
            state: state.into(),
            sale_id: self.sale.as_ref().map(|s| s.sale_id.to_string()).unwrap_or_default(),
            basket_items: self.sale.as_ref().map(OpenSale::items).unwrap_or(0),
            basket_total: self.sale.as_ref().map(|s| money_to_pb(s.total)),
            frames_decoded: self.summary.frames,
            codes_read: self.summary.codes_read,
        }
    }

    fn send_heartbeat(&self, ctx: &mut Context<Self>) {
        let mut client = self.client.clone();
        let mut request = tonic::Request::new(self.heartbeat_request());
        request.set_timeout(Duration::from_secs(3));
        ctx.spawn(async move { client.heartbeat(request).await }.into_actor(self).map(
            |answer, till, ctx| match answer {
                Ok(_) if !till.reachable => {
                    till.reachable = true;
                    till.show(LaneEventKind::CoordinatorReachable);
                    till.deliver_outbox(ctx);
                }
                Err(status) if retryable(&status) && till.reachable => {
                    till.reachable = false;
                    till.show(LaneEventKind::CoordinatorUnreachable { reason: status.message().to_owned() });
                }
                Err(status) => tracing::debug!(%status, "heartbeat not delivered"),
                Ok(_) => {}
            },
        ));
    }

    /// Delivers queued sales in order; stops at the first that cannot be delivered now.
    fn deliver_outbox(&mut self, ctx: &mut Context<Self>) {
        if self.delivering {
            return;
        }
        let pending = match self.outbox.pending() {
            Ok(pending) if pending.is_empty() => return,
            Ok(pending) => pending,
            Err(e) => {
                self.show(LaneEventKind::Problem { message: format!("cannot read the lane's outbox: {e}") });
                return;
            }
        };
        self.delivering = true;
        let delivery = deliver(self.client.clone(), self.outbox.clone(), pending, self.currency);
        ctx.spawn(delivery.into_actor(self).map(|shown, till, _| {
            till.delivering = false;
            for kind in shown {
                till.show(kind);
            }
        }));
    }

    /// Sends `request` (a new charge, or the same one again to learn its outcome) and settles the basket.
    fn charge(&mut self, request: pb::PayRequest, ctx: &mut Context<Self>) -> ResponseActFuture<Self, ()> {
        self.paying = true;
        self.send_heartbeat(ctx);
        let sent = request.clone();
        Box::pin(pay(self.client.clone(), request).into_actor(self).map(move |outcome, till, ctx| {
            till.report_charged(&outcome, &sent);
            till.unsettled = matches!(outcome, PayFlow::Uncertain { .. }).then_some(sent);
            till.settle(outcome, ctx);
            till.send_heartbeat(ctx);
        }))
    }

    /// Asks again about the charge whose outcome was not known.
    fn retry_unsettled(&mut self, ctx: &mut Context<Self>) {
        if self.paying || !self.reachable {
            return;
        }
        if let Some(request) = self.unsettled.clone() {
            let retry = self.charge(request, ctx);
            ctx.spawn(retry);
        }
    }

    fn settle(&mut self, outcome: PayFlow, ctx: &mut Context<Self>) {
        self.paying = false;
        let sale_id = self.sale.as_ref().map(|s| s.sale_id.to_string()).unwrap_or_default();
        match outcome {
            PayFlow::Paid { response } => {
                if let Some(sale) = self.sale.take() {
                    self.summary.sales += 1;
                    self.summary.items += u64::from(sale.items());
                    if let Ok(total) = self.summary.paid_total.checked_add(sale.total) {
                        self.summary.paid_total = total;
                    }
                    self.queue_finished_sale(&sale, &response.out_trade_no);
                    self.deliver_outbox(ctx);
                    self.show(LaneEventKind::SalePaid {
                        sale_id: sale.sale_id.to_string(),
                        items: sale.items(),
                        total: sale.total,
                        provider: provider_name(response.provider),
                        masked_code: response.masked_code,
                        out_trade_no: response.out_trade_no,
                    });
                }
            }
            PayFlow::Declined { message } => {
                self.summary.declined += 1;
                self.show(LaneEventKind::PaymentDeclined { sale_id, message });
            }
            PayFlow::Uncertain { message } => self.show(LaneEventKind::PaymentUncertain { sale_id, message }),
            PayFlow::Refused { message } => self.show(LaneEventKind::PaymentDeclined { sale_id, message }),
        }
    }
}

impl Till {
    /// Puts a paid sale in the outbox, on disk, before the basket is forgotten.
    fn queue_finished_sale(&mut self, sale: &OpenSale, out_trade_no: &str) {
        let out_trade_no = match OutTradeNo::parse(out_trade_no) {
            Ok(n) => n,
            Err(e) => {
                let message = format!("sale {} is paid but the store's order number is unusable: {e}", sale.sale_id);
                self.show(LaneEventKind::Problem { message });
                return;
            }
        };
        let finished = FinishedSale {
            lane_id: self.lane_id.clone(),
            sale_id: sale.sale_id.clone(),
            shift_id: self.shift.clone(),
            lines: sale.lines.clone(),
            total: sale.total,
            out_trade_no,
            started_at: sale.started_at,
            finished_at: UnixMillis::now(),
        };
        if let Err(e) = self.outbox.push(&OutboxItem::Sale(finished)) {
            let message = format!("sale {} is paid but cannot be kept on this lane's disk: {e}", sale.sale_id);
            self.show(LaneEventKind::Problem { message });
        }
    }
}

fn finish_request(sale: &FinishedSale) -> pb::FinishSaleRequest {
    pb::FinishSaleRequest {
        lane_id: sale.lane_id.to_string(),
        sale_id: sale.sale_id.to_string(),
        lines: sale
            .lines
            .iter()
            .map(|(gtin, quantity)| pb::SaleLine { gtin: gtin.to_string(), quantity: *quantity })
            .collect(),
        total: Some(money_to_pb(sale.total)),
        out_trade_no: sale.out_trade_no.to_string(),
        started_at: Some(timestamp(sale.started_at)),
        finished_at: Some(timestamp(sale.finished_at)),
        shift_id: sale.shift_id.as_ref().map(ToString::to_string).unwrap_or_default(),
    }
}

/// Sends queued items in order; returns what to show the cashier. An item the store refuses for
/// good is set aside (logged at error level) rather than retried forever.
async fn deliver(
    mut client: CoordinatorClient,
    outbox: LaneStore,
    pending: Vec<(u64, OutboxItem)>,
    currency: Currency,
) -> Vec<LaneEventKind> {
    let mut shown = Vec::new();
    for (seq, item) in pending {
        let sent = match &item {
            OutboxItem::Sale(sale) => {
                let mut request = tonic::Request::new(finish_request(sale));
                request.set_timeout(Duration::from_secs(10));
                client.finish_sale(request).await.map(drop)
            }
            OutboxItem::ShiftOpened(shift) => {
                let mut request = tonic::Request::new(pb::OpenShiftRequest {
                    lane_id: shift.lane_id.to_string(),
                    shift_id: shift.shift_id.to_string(),
                    cashier_id: shift.cashier.to_string(),
                    opened_at: Some(timestamp(shift.opened_at)),
                });
                request.set_timeout(Duration::from_secs(10));
                client.open_shift(request).await.map(drop)
            }
            OutboxItem::ShiftClosed { lane_id, shift_id, closed_at } => {
                let mut request = tonic::Request::new(pb::CloseShiftRequest {
                    lane_id: lane_id.to_string(),
                    shift_id: shift_id.to_string(),
                    closed_at: Some(timestamp(*closed_at)),
                });
                request.set_timeout(Duration::from_secs(10));
                client.close_shift(request).await.map(|report| {
                    let report = report.into_inner();
                    shown.push(LaneEventKind::ShiftReport {
                        shift_id: report.shift_id,
                        cashier: report.cashier_id,
                        sales: report.sales,
                        items: report.items,
                        total: report
                            .sales_total
                            .map(|total| money_from_pb(total, currency))
                            .unwrap_or(Money::zero(currency)),
                    });
                })
            }
        };
        match sent {
            Ok(()) => {}
            Err(status) if retryable(&status) => {
                tracing::info!(?item, %status, "stays in the outbox until the store answers");
                break;
            }
            Err(status) => {
                tracing::error!(?item, %status, "the store refused an item of the lane's outbox");
                shown.push(LaneEventKind::Problem {
                    message: format!("the store refused {}: {}", describe(&item), status.message()),
                });
            }
        }
        if let Err(e) = outbox.delivered(seq) {
            shown.push(LaneEventKind::Problem {
                message: format!("cannot clear {} from the outbox: {e}", describe(&item)),
            });
            break;
        }
    }
    shown
}

fn describe(item: &OutboxItem) -> String {
    match item {
        OutboxItem::Sale(sale) => format!("sale {}", sale.sale_id),
        OutboxItem::ShiftOpened(shift) => format!("the opening of shift {}", shift.shift_id),
        OutboxItem::ShiftClosed { shift_id, .. } => format!("the closing of shift {shift_id}"),
    }
}

/// The store's money; the lane's own currency stands in for a currency it cannot read.
fn money_from_pb(money: pb::Money, lane_currency: Currency) -> Money {
    Money::new(money.minor_units, Currency::parse(&money.currency).unwrap_or(lane_currency))
}

fn provider_name(provider: i32) -> String {
    match pb::Provider::try_from(provider) {
        Ok(pb::Provider::WechatPay) => "WeChat Pay",
        Ok(pb::Provider::Alipay) => "Alipay",
        Ok(pb::Provider::Unionpay) => "UnionPay QuickPass",
        _ => "an unknown provider",
    }
    .to_owned()
}

pub fn money_to_pb(money: Money) -> pb::Money {
    pb::Money { minor_units: money.minor_units, currency: money.currency.to_string() }
}

/// How a payment ended, as the lane sees it.
enum PayFlow {
    Paid {
        response: pb::PayResponse,
    },
    Declined {
        message: String,
    },
    Uncertain {
        message: String,
    },
    /// The coordinator refused the request itself (bad code, unreachable...).
    Refused {
        message: String,
    },
}

const ATTEMPTS: u32 = 4;

/// Charges the code. Repeating the request is safe: Pay is idempotent for one (sale, attempt).
async fn pay(mut client: CoordinatorClient, pay: pb::PayRequest) -> PayFlow {
    let mut tries = 0;
    let response = loop {
        tries += 1;
        let mut request = tonic::Request::new(pay.clone());
        request.set_timeout(Duration::from_secs(90));
        match client.pay(request).await {
            Ok(response) => break response.into_inner(),
            Err(status) if retryable(&status) && tries < ATTEMPTS => {
                tracing::warn!(%status, tries, "pay request failed: repeating it");
                tokio::time::sleep(Duration::from_millis(300 * u64::from(tries))).await;
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
    match pb::PaymentOutcome::try_from(response.outcome) {
        Ok(pb::PaymentOutcome::Paid) => PayFlow::Paid { response },
        Ok(pb::PaymentOutcome::NewCodeNeeded | pb::PaymentOutcome::Failed) => {
            PayFlow::Declined { message: response.message }
        }
        _ => PayFlow::Uncertain { message: response.message },
    }
}

impl Actor for Till {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        self.sign_on();
        self.send_heartbeat(ctx);
        // Sales left in the outbox by an earlier run go first.
        self.deliver_outbox(ctx);
        ctx.run_interval(self.heartbeat_every, |till, ctx| {
            till.send_heartbeat(ctx);
            till.deliver_outbox(ctx);
            till.retry_unsettled(ctx);
        });
    }
}

impl Till {
    /// Tells the scanner a code was charged, so that it never hands the code over again.
    fn report_charged(&self, outcome: &PayFlow, request: &pb::PayRequest) {
        if let PayFlow::Paid { .. } = outcome
            && let Ok(code) = PaymentCode::parse(&request.payment_code)
        {
            self.charges_to.do_send(PaymentCodeCharged(code));
        }
    }
}

impl Handler<FrameDone> for Till {
    type Result = ResponseActFuture<Self, ()>;

    fn handle(&mut self, frame: FrameDone, ctx: &mut Context<Self>) -> Self::Result {
        self.summary.frames += 1;
        self.summary.codes_read += frame.codes_read;
        self.scan_latencies.extend(frame.latency);
        if let Some(skipped) = frame.skipped {
            self.summary.frames_skipped += 1;
            self.show(LaneEventKind::FrameSkipped { reason: skipped.0 });
        }
        if let Some(unreadable) = frame.unreadable {
            self.show(LaneEventKind::ReadHint { hint: unreadable.hint().to_owned() });
        }
        if self.unsettled.is_some() || self.paying {
            if !frame.scans.is_empty() {
                let sale_id = self.sale.as_ref().map(|s| s.sale_id.to_string()).unwrap_or_default();
                let message =
                    "the last payment is still being resolved: wait before scanning (do not hand over the goods yet)"
                        .to_owned();
                self.show(LaneEventKind::PaymentUncertain { sale_id, message });
            }
            return Box::pin(actix::fut::ready(()));
        }
        let mut payment_code: Option<PaymentCode> = None;
        for scan in frame.scans {
            match scan {
                ScannedCode::Product(gtin) => self.add_product(gtin),
                ScannedCode::Unrecognised { reason } => {
                    self.summary.unrecognised += 1;
                    self.show(LaneEventKind::Unrecognised { reason });
                }
                ScannedCode::Payment(code) if payment_code.is_none() => payment_code = Some(code),
                ScannedCode::Payment(code) => {
                    tracing::debug!(code = %code.masked(), "second payment code in one frame ignored")
                }
            }
        }
        let Some(code) = payment_code else { return Box::pin(actix::fut::ready(())) };
        if self.sale.is_none() {
            self.show(LaneEventKind::ScanItemsFirst);
            return Box::pin(actix::fut::ready(()));
        }
        if !self.reachable {
            // A wallet code cannot be kept and charged later: it expires within a minute.
            self.show(LaneEventKind::WalletPaymentsUnavailable);
            return Box::pin(actix::fut::ready(()));
        }
        let Some(sale) = self.sale.as_mut() else { return Box::pin(actix::fut::ready(())) };
        sale.attempts += 1;
        let lines: Vec<pb::SaleLine> = sale
            .lines
            .iter()
            .map(|(gtin, quantity)| pb::SaleLine { gtin: gtin.to_string(), quantity: *quantity })
            .collect();
        let request = pb::PayRequest {
            lane_id: self.lane_id.to_string(),
            sale_id: sale.sale_id.to_string(),
            attempt: sale.attempts,
            payment_code: code.expose_digits().to_owned(),
            lines,
            amount: Some(money_to_pb(sale.total)),
            shift_id: self.shift.as_ref().map(ToString::to_string).unwrap_or_default(),
            started_at: Some(timestamp(sale.started_at)),
        };
        tracing::info!(lane_id = %self.lane_id, sale_id = %sale.sale_id, code = %code.masked(), total = %sale.total, "charging");
        self.charge(request, ctx)
    }
}

fn timestamp(at: UnixMillis) -> Timestamp {
    Timestamp { seconds: at.0.div_euclid(1000), nanos: (at.0.rem_euclid(1000) * 1_000_000) as i32 }
}

impl Handler<FramesEnded> for Till {
    type Result = ResponseActFuture<Self, ()>;

    fn handle(&mut self, _: FramesEnded, _: &mut Context<Self>) -> Self::Result {
        // A charge still uncertain is asked about until its outcome is known (the store settles every
        // charge within its query deadline), so a paid sale is not left unreported.
        let resolve: ResponseActFuture<Self, ()> = match self.unsettled.clone() {
            None => Box::pin(actix::fut::ready(())),
            Some(request) => Box::pin(resolve_before_closing(self.client.clone(), request).into_actor(self).map(
                |outcome, till, ctx| {
                    till.unsettled = None;
                    till.settle(outcome, ctx);
                },
            )),
        };
        Box::pin(
            resolve
                .then(|(), till, _| {
                    // Whatever basket is left now was never paid.
                    if let Some(sale) = till.sale.take() {
                        tracing::warn!(lane_id = %till.lane_id, sale_id = %sale.sale_id, items = sale.items(), "lane closing with an unpaid basket: sale abandoned");
                    }
                    // The cashier signs off with the lane.
                    till.sign_off();
                    // The outbox goes out before the lane closes (for a few seconds if the store is
                    // restarting); what still cannot be delivered stays on disk for the next start.
                    deliver_before_closing(till.client.clone(), till.outbox.clone(), till.currency)
                        .into_actor(till)
                })
                .map(|shown, till, ctx| {
                    for kind in shown {
                        till.show(kind);
                    }
                    let undelivered = till
                        .outbox
                        .pending()
                        .map(|p| p.iter().filter(|(_, item)| matches!(item, OutboxItem::Sale(_))).count())
                        .unwrap_or(0);
                    if undelivered > 0 {
                        till.show(LaneEventKind::Problem {
                            message: format!("{undelivered} paid sales wait in the lane's outbox for the store"),
                        });
                    }
                    till.summary.undelivered = undelivered as u64;
                    till.summary.set_scan_latencies(&mut till.scan_latencies);
                    if let Some(done) = till.done.take() {
                        // Closed: the last heartbeat says so.
                        till.send_heartbeat(ctx);
                        let _ = done.send(till.summary.clone());
                    }
                    ctx.stop();
                }),
        )
    }
}

/// Delivers the outbox, trying again for up to ten seconds while the store cannot be reached.
async fn deliver_before_closing(
    client: CoordinatorClient,
    outbox: LaneStore,
    currency: Currency,
) -> Vec<LaneEventKind> {
    let give_up = tokio::time::Instant::now() + Duration::from_secs(10);
    let mut shown = Vec::new();
    loop {
        let pending = outbox.pending().unwrap_or_default();
        if pending.is_empty() {
            return shown;
        }
        shown.extend(deliver(client.clone(), outbox.clone(), pending, currency).await);
        let delivered = outbox.pending().map(|p| p.is_empty()).unwrap_or(true);
        if delivered || tokio::time::Instant::now() >= give_up {
            return shown;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// Repeats a Pay whose outcome is unknown until it is known, for at most two minutes.
async fn resolve_before_closing(client: CoordinatorClient, request: pb::PayRequest) -> PayFlow {
    let give_up = tokio::time::Instant::now() + Duration::from_secs(120);
    loop {
        let outcome = pay(client.clone(), request.clone()).await;
        if !matches!(outcome, PayFlow::Uncertain { .. }) || tokio::time::Instant::now() >= give_up {
            return outcome;
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}
