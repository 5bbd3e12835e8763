//! The payment actor: keeps the basket, charges the customer's code through the coordinator and reports the sale.

use std::{collections::HashMap, fmt, time::Duration};

use actix::prelude::*;
use checkout_proto::{
    Timestamp,
    v1::{self as pb, lane_service_client::LaneServiceClient},
};
use checkout_storage::{Currency, LaneId, Money, PaymentCode, Product, ProductCode, SaleId, ScannedCode, UnixMillis};
use tokio::sync::{mpsc::UnboundedSender, oneshot};
use tonic::{Code, transport::Channel};

/// What a lane shows its cashier, and the demo prints.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LaneEventKind {
    ItemAdded { sale_id: String, name: String, price: Money, basket_items: u32, basket_total: Money },
    UnknownProduct { gtin: String },
    Unrecognised { reason: String },
    ScanItemsFirst,
    SalePaid { sale_id: String, items: u32, total: Money, provider: String, masked_code: String, out_trade_no: String },
    PaymentDeclined { sale_id: String, message: String },
    PaymentUncertain { sale_id: String, message: String },
    FrameSkipped { reason: String },
    Problem { message: String },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LaneEvent {
    pub lane_id: LaneId,
    pub kind: LaneEventKind,
}

impl fmt::Display for LaneEvent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let lane = &self.lane_id;
        match &self.kind {
            LaneEventKind::ItemAdded { name, price, basket_items, basket_total, .. } => {
                write!(f, "{lane}: {name} {price} ({basket_items} items, {basket_total})")
            }
            LaneEventKind::UnknownProduct { gtin } => write!(f, "{lane}: product {gtin} is not in the price file"),
            LaneEventKind::Unrecognised { reason } => write!(f, "{lane}: {reason}"),
            LaneEventKind::ScanItemsFirst => {
                write!(f, "{lane}: payment code scanned with an empty basket: scan items first")
            }
            LaneEventKind::SalePaid { sale_id, items, total, provider, masked_code, .. } => {
                write!(f, "{lane}: sale {sale_id} paid: {items} items, {total} by {provider} {masked_code}")
            }
            LaneEventKind::PaymentDeclined { sale_id, message } => {
                write!(f, "{lane}: sale {sale_id} not paid: {message}")
            }
            LaneEventKind::PaymentUncertain { sale_id, message } => write!(f, "{lane}: sale {sale_id}: {message}"),
            LaneEventKind::FrameSkipped { reason } => write!(f, "{lane}: frame skipped: {reason}"),
            LaneEventKind::Problem { message } => write!(f, "{lane}: {message}"),
        }
    }
}

/// What a lane did in its run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LaneSummary {
    pub lane_id: LaneId,
    pub sales: u64,
    pub items: u64,
    pub paid_total: Money,
    pub declined: u64,
    pub frames: u64,
    pub frames_skipped: u64,
    pub codes_read: u64,
    pub unrecognised: u64,
}

/// The outcome of one decoded frame, after de-duplication.
#[derive(Message)]
#[rtype(result = "()")]
pub struct FrameDone {
    pub scans: Vec<ScannedCode>,
    pub codes_read: u64,
    /// Why the frame was skipped, if it was.
    pub skipped: Option<String>,
}

/// The camera has no more frames (or the lane is stopping).
#[derive(Message)]
#[rtype(result = "()")]
pub struct FramesEnded;

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

pub struct Payment {
    lane_id: LaneId,
    client: LaneServiceClient<Channel>,
    catalog: HashMap<ProductCode, Product>,
    currency: Currency,
    sale: Option<OpenSale>,
    paying: bool,
    last_sale_millis: i64,
    summary: LaneSummary,
    heartbeat_every: Duration,
    events: Option<UnboundedSender<LaneEvent>>,
    done: Option<oneshot::Sender<LaneSummary>>,
}

impl Payment {
    pub fn new(
        lane_id: LaneId,
        client: LaneServiceClient<Channel>,
        products: Vec<Product>,
        currency: Currency,
        heartbeat_every: Duration,
        events: Option<UnboundedSender<LaneEvent>>,
        done: oneshot::Sender<LaneSummary>,
    ) -> Payment {
        let summary = LaneSummary {
            lane_id: lane_id.clone(),
            sales: 0,
            items: 0,
            paid_total: Money::zero(currency),
            declined: 0,
            frames: 0,
            frames_skipped: 0,
            codes_read: 0,
            unrecognised: 0,
        };
        Payment {
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
        }
    }

    fn show(&self, kind: LaneEventKind) {
        let event = LaneEvent { lane_id: self.lane_id.clone(), kind };
        tracing::info!(lane_id = %self.lane_id, "{event}");
        if let Some(events) = &self.events {
            let _ = events.send(event);
        }
    }

    /// A sale id unique to this lane: the lane and the start time in base 36, strictly increasing.
    fn new_sale_id(&mut self) -> SaleId {
        let millis = UnixMillis::now().0.max(self.last_sale_millis + 1);
        self.last_sale_millis = millis;
        let mut n = millis as u64;
        let mut digits = Vec::new();
        while n > 0 {
            digits.push(b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"[(n % 36) as usize]);
            n /= 36;
        }
        digits.reverse();
        let id = format!("{}-{}", self.lane_id, String::from_utf8_lossy(&digits));
        // A lane id has at most 6 characters and the millis at most 9 base-36 digits: always valid.
        SaleId::parse(&id).unwrap_or_else(|_| unreachable!("sale id {id} out of shape"))
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

    fn send_heartbeat(&self) {
        let mut client = self.client.clone();
        let request = self.heartbeat_request();
        actix::spawn(async move {
            if let Err(status) = client.heartbeat(request).await {
                tracing::debug!(%status, "heartbeat not delivered");
            }
        });
    }

    fn settle(&mut self, outcome: PayFlow) {
        self.paying = false;
        let sale_id = self.sale.as_ref().map(|s| s.sale_id.to_string()).unwrap_or_default();
        match outcome {
            PayFlow::Paid { response, recorded } => {
                if let Some(sale) = self.sale.take() {
                    self.summary.sales += 1;
                    self.summary.items += u64::from(sale.items());
                    if let Ok(total) = self.summary.paid_total.checked_add(sale.total) {
                        self.summary.paid_total = total;
                    }
                    if let Err(message) = recorded {
                        self.show(LaneEventKind::Problem {
                            message: format!(
                                "sale {} is paid but not yet recorded by the store: {message}",
                                sale.sale_id
                            ),
                        });
                    }
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
        recorded: Result<(), String>,
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

/// Worth repeating the same request: the coordinator may not have seen it, or its answer was lost.
fn retryable(status: &tonic::Status) -> bool {
    matches!(status.code(), Code::Unavailable | Code::Unknown | Code::DeadlineExceeded | Code::Cancelled)
}

const ATTEMPTS: u32 = 4;

/// Charges the code and, once paid, reports the sale. Repeats of a request are safe: Pay and FinishSale are idempotent.
async fn pay_and_record(
    mut client: LaneServiceClient<Channel>,
    pay: pb::PayRequest,
    finish: pb::FinishSaleRequest,
) -> PayFlow {
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
        Ok(pb::PaymentOutcome::Paid) => {
            let mut finish = finish;
            finish.out_trade_no = response.out_trade_no.clone();
            let mut recorded = Err(String::new());
            for tries in 1..=ATTEMPTS {
                match client.finish_sale(finish.clone()).await {
                    Ok(_) => {
                        recorded = Ok(());
                        break;
                    }
                    Err(status) => {
                        recorded = Err(status.message().to_owned());
                        if !retryable(&status) {
                            break;
                        }
                        tokio::time::sleep(Duration::from_millis(300 * u64::from(tries))).await;
                    }
                }
            }
            PayFlow::Paid { response, recorded }
        }
        Ok(pb::PaymentOutcome::NewCodeNeeded | pb::PaymentOutcome::Failed) => {
            PayFlow::Declined { message: response.message }
        }
        _ => PayFlow::Uncertain { message: response.message },
    }
}

impl Actor for Payment {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        self.send_heartbeat();
        ctx.run_interval(self.heartbeat_every, |payment, _| payment.send_heartbeat());
    }
}

impl Handler<FrameDone> for Payment {
    type Result = ResponseActFuture<Self, ()>;

    fn handle(&mut self, frame: FrameDone, _: &mut Context<Self>) -> Self::Result {
        self.summary.frames += 1;
        self.summary.codes_read += frame.codes_read;
        if let Some(reason) = frame.skipped {
            self.summary.frames_skipped += 1;
            self.show(LaneEventKind::FrameSkipped { reason });
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
        let Some(sale) = self.sale.as_mut() else {
            self.show(LaneEventKind::ScanItemsFirst);
            return Box::pin(actix::fut::ready(()));
        };
        sale.attempts += 1;
        let lines: Vec<pb::SaleLine> = sale
            .lines
            .iter()
            .map(|(gtin, quantity)| pb::SaleLine { gtin: gtin.to_string(), quantity: *quantity })
            .collect();
        let pay = pb::PayRequest {
            lane_id: self.lane_id.to_string(),
            sale_id: sale.sale_id.to_string(),
            attempt: sale.attempts,
            payment_code: code.expose_digits().to_owned(),
            lines: lines.clone(),
            amount: Some(money_to_pb(sale.total)),
        };
        let finish = pb::FinishSaleRequest {
            lane_id: self.lane_id.to_string(),
            sale_id: sale.sale_id.to_string(),
            lines,
            total: Some(money_to_pb(sale.total)),
            out_trade_no: String::new(),
            started_at: Some(timestamp(sale.started_at)),
            finished_at: Some(timestamp(UnixMillis::now())),
        };
        tracing::info!(lane_id = %self.lane_id, sale_id = %sale.sale_id, code = %code.masked(), total = %sale.total, "charging");
        self.paying = true;
        self.send_heartbeat();
        Box::pin(pay_and_record(self.client.clone(), pay, finish).into_actor(self).map(|outcome, payment, _| {
            payment.settle(outcome);
            payment.send_heartbeat();
        }))
    }
}

fn timestamp(at: UnixMillis) -> Timestamp {
    Timestamp { seconds: at.0.div_euclid(1000), nanos: (at.0.rem_euclid(1000) * 1_000_000) as i32 }
}

impl Handler<FramesEnded> for Payment {
    type Result = ();

    fn handle(&mut self, _: FramesEnded, ctx: &mut Context<Self>) {
        if let Some(sale) = self.sale.take() {
            tracing::warn!(lane_id = %self.lane_id, sale_id = %sale.sale_id, items = sale.items(), "lane closing with an unpaid basket: sale abandoned");
        }
        if let Some(done) = self.done.take() {
            // Closed: the last heartbeat says so.
            self.send_heartbeat();
            let _ = done.send(self.summary.clone());
        }
        ctx.stop();
    }
}
