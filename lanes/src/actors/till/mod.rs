//! The till: the lane's payment actor. It keeps the open sale, charges the customer's code through the
//! coordinator, puts paid sales and the cashier's shift in the outbox, and reports the lane's summary.

pub(crate) mod basket;
mod cashier;
pub(crate) mod charge;
mod client;
mod ids;
mod outbox;
mod screen;

use std::{collections::HashMap, time::Duration};

use actix::prelude::*;
use checkout_proto::v1 as pb;
use checkout_storage::{
    CashierId, CouponCode, Currency, LaneId, LaneStore, MemberCode, MemberId, MemberKey, Money, OutTradeNo, OutboxItem,
    PaymentCode, Product, ProductCode, ScannedCode, ShiftId, ShiftRecord, UnixMillis,
};
use tokio::sync::{mpsc::UnboundedSender, oneshot};

pub use self::screen::{OPEN_PRICE_CAP_DEFAULT, TillScreen};
use self::{
    basket::OpenSale,
    charge::{Charge, PayFlow},
    ids::LaneIds,
    screen::{ScreenMemory, TillView},
};
use crate::{
    connection::{CoordinatorClient, retryable},
    convert,
    events::{LaneEvent, LaneEventKind, LaneSummary},
    messages::{FrameDone, FramesEnded, PaymentCodeCharged},
    screen::state::PaymentPhase,
};

/// How often a paying lane asks the store how its charge goes (for the screens).
const PAYING_HEARTBEAT: Duration = Duration::from_millis(500);

/// The lane's payment actor: the basket, the charge, the cashier's shift and the outbox.
pub struct Till {
    lane_id: LaneId,
    client: CoordinatorClient,
    catalog: HashMap<ProductCode, Product>,
    currency: Currency,
    /// The sale being rung up, from its first item until it is paid.
    sale: Option<OpenSale>,
    /// A `Pay` is on its way: scans wait.
    paying: bool,
    ids: LaneIds,
    summary: LaneSummary,
    heartbeat_every: Duration,
    events: Option<UnboundedSender<LaneEvent>>,
    done: Option<oneshot::Sender<LaneSummary>>,
    /// Paid sales not yet delivered to the coordinator, kept on disk.
    outbox: LaneStore,
    /// A delivery of the outbox is on its way: another one waits for the next heartbeat.
    delivering: bool,
    /// Whether the coordinator answered the last heartbeat. Wallet payments need it:
    /// a code expires within a minute and cannot be charged later.
    reachable: bool,
    /// A charge whose outcome is not known yet: the lane asks again (same request, so never a
    /// second charge) until it is, and takes no other code or item meanwhile.
    unsettled: Option<Charge>,
    cashier: CashierId,
    /// The cashier's shift, open from the lane's start to its stop.
    shift: Option<ShiftId>,
    /// Frame-to-scan latencies seen so far.
    scan_latencies: Vec<Duration>,
    /// Told of every payment code charged (the scanner, so that it never hands one over again).
    charges_to: Recipient<PaymentCodeCharged>,
    /// A manager closed the lane (why, from the store): the sale in progress finishes, no new one starts.
    closed_by_store: Option<String>,
    /// The key of the store's member codes, to refuse misread and forged ones on the spot.
    member_key: Option<MemberKey>,
    /// A member scanned before the first item: they go with the sale that starts next.
    next_sale_member: Option<MemberId>,
    /// The store's promotions, to price baskets with (refreshed by heartbeats).
    promotions: crate::convert::Promotions,
    /// What the lane's screens show besides the basket, and where the till publishes it.
    screen: ScreenMemory,
    /// The cashier paused the lane: no scans are taken until they resume it.
    paused: bool,
    /// A cashier is signed on (the lane starts with its configured cashier signed on).
    signed_on: bool,
    /// The lane is closing: the cashier's actions are refused.
    closing: bool,
    /// While a charge is under way: the store is asked how it goes every [`PAYING_HEARTBEAT`].
    progress_poll: Option<SpawnHandle>,
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
    /// The key of the store's member codes (from registration).
    pub member_key: Option<MemberKey>,
    /// The store's promotions (from registration).
    pub promotions: crate::convert::Promotions,
    /// The cashier's screen, when the lane serves one.
    pub screen: Option<TillScreen>,
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
        let TillSetup {
            client,
            products,
            currency,
            heartbeat_every,
            events,
            outbox,
            cashier,
            member_key,
            promotions,
            screen,
        } = setup;
        Till {
            summary: LaneSummary::new(lane_id.clone(), currency),
            ids: LaneIds::new(lane_id.clone()),
            lane_id,
            client,
            catalog: products.into_iter().map(|p| (p.gtin.clone(), p)).collect(),
            currency,
            sale: None,
            paying: false,
            heartbeat_every,
            events,
            done: Some(done),
            outbox,
            delivering: false,
            reachable: true,
            closed_by_store: None,
            unsettled: None,
            cashier,
            shift: None,
            scan_latencies: Vec::new(),
            charges_to,
            member_key,
            next_sale_member: None,
            promotions,
            screen: ScreenMemory::new(screen, currency),
            paused: false,
            signed_on: false,
            closing: false,
            progress_poll: None,
        }
    }

    /// Prices the open sale with the promotions again, and shows its discount lines when they changed.
    fn reprice(&mut self) {
        let Some(sale) = self.sale.as_mut() else { return };
        if sale.reprice(&self.promotions.list) {
            let lines = sale.promotion_lines.iter().map(|d| (d.name.clone(), d.amount)).collect();
            let to_pay = sale.to_pay();
            self.show(LaneEventKind::BasketDiscounts { lines, to_pay });
        }
    }

    /// A member code scanned: checked against the store's key on the spot, then the store is asked for the
    /// member's name and points; the member goes with the open sale (or the next one).
    fn member_scanned(&mut self, code: MemberCode, ctx: &mut Context<Self>) {
        let Some(key) = &self.member_key else {
            let reason = "this store gives its lanes no member key: members cannot be taken here".to_owned();
            return self.show(LaneEventKind::MemberRefused { reason });
        };
        let member_id = match code.verify(key) {
            Ok(member_id) => member_id.clone(),
            Err(e) => return self.show(LaneEventKind::MemberRefused { reason: e.to_string() }),
        };
        let request = pb::LookupMemberRequest { lane_id: self.lane_id.to_string(), member_code: code.text() };
        ctx.spawn(client::lookup_member(self.client.clone(), request).into_actor(self).map(move |answer, till, _| {
            match answer {
                Ok(member) => {
                    till.attach_member(member_id);
                    let (member_id, name, points) = (member.member_id, member.name, Some(member.points));
                    till.show(LaneEventKind::MemberAttached { member_id, name, points });
                }
                // The code checked out here: the member goes with the sale, and the store credits them.
                Err(status) if retryable(&status) => {
                    let shown = member_id.to_string();
                    till.attach_member(member_id);
                    till.show(LaneEventKind::MemberAttached { member_id: shown, name: String::new(), points: None });
                }
                Err(status) => till.show(LaneEventKind::MemberRefused { reason: status.message().to_owned() }),
            }
        }));
    }

    /// A coupon code scanned: checked against the store's key on the spot, then held by the store for the open
    /// sale (no other lane can use it meanwhile); its discount comes off what the customer pays.
    fn coupon_scanned(&mut self, code: CouponCode, ctx: &mut Context<Self>) {
        let Some(key) = &self.member_key else {
            let reason = "this store gives its lanes no code key: coupons cannot be taken here".to_owned();
            return self.show(LaneEventKind::CouponRefused { reason });
        };
        if let Err(e) = code.verify(key) {
            return self.show(LaneEventKind::CouponRefused { reason: e.to_string() });
        }
        let Some(sale) = &self.sale else {
            let reason = "scan the items first, then the coupon".to_owned();
            return self.show(LaneEventKind::CouponRefused { reason });
        };
        let sale_id = sale.sale_id.clone();
        let request = pb::HoldCouponRequest {
            lane_id: self.lane_id.to_string(),
            sale_id: sale_id.to_string(),
            coupon_code: code.text(),
        };
        ctx.spawn(client::hold_coupon(self.client.clone(), request).into_actor(self).map(move |answer, till, ctx| {
            let coupon = match answer.map(convert::held_coupon) {
                Ok(Ok(coupon)) => coupon,
                Ok(Err(reason)) => return till.show(LaneEventKind::CouponRefused { reason }),
                Err(status) => {
                    return till.show(LaneEventKind::CouponRefused { reason: status.message().to_owned() });
                }
            };
            let unsettled = till.paying || till.unsettled.is_some();
            let Some(sale) = till.sale.as_mut().filter(|s| s.sale_id == sale_id && !unsettled) else {
                // The sale was cancelled, or is being charged without it, while the store held the coupon:
                // it goes back at once rather than when the store's hold runs out.
                let request = pb::ReleaseCouponRequest {
                    lane_id: till.lane_id.to_string(),
                    sale_id: sale_id.to_string(),
                    coupon_id: coupon.coupon_id,
                };
                ctx.spawn(client::release_coupon(till.client.clone(), request).into_actor(till));
                return;
            };
            let (coupon_id, note) = (coupon.coupon_id.clone(), coupon.note.clone());
            sale.coupon = Some(coupon.held);
            let (discount, to_pay) = (sale.discount(), sale.to_pay());
            till.show(LaneEventKind::CouponApplied { coupon_id, note, discount, to_pay });
        }));
    }

    fn attach_member(&mut self, member_id: MemberId) {
        match self.sale.as_mut() {
            Some(sale) if !self.paying && self.unsettled.is_none() => sale.member_id = Some(member_id),
            _ => self.next_sale_member = Some(member_id),
        }
    }

    fn show(&mut self, kind: LaneEventKind) {
        let event = LaneEvent { lane_id: self.lane_id.clone(), kind };
        tracing::info!(lane_id = %self.lane_id, "{event}");
        if self.screen.publish.is_some() {
            let text = event.to_string();
            let text = text.strip_prefix(&format!("{}: ", self.lane_id)).unwrap_or(&text).to_owned();
            self.screen.note(&event.kind, text);
        }
        if let Some(events) = &self.events {
            let _ = events.send(event);
        }
        self.publish();
    }

    /// Publishes the till's state to the lane's screens (nothing without one).
    fn publish(&mut self) {
        if self.screen.publish.is_none() {
            return;
        }
        let view = TillView {
            lane_id: self.lane_id.to_string(),
            cashier: self.signed_on.then(|| self.cashier.to_string()),
            shift_id: self.shift.as_ref().map(ToString::to_string),
            paused: self.paused,
            closed_by_store: self.closed_by_store.clone(),
            reachable: self.reachable,
            sale: self.sale.as_ref(),
            paying: self.paying,
            uncertain: self.unsettled.as_ref().map(|_| {
                "payment uncertain: the lane keeps asking the store; do not hand over the goods yet".to_owned()
            }),
        };
        self.screen.publish(view);
    }

    /// Resumes the shift a crash left open for this lane's cashier, or opens a new one
    /// (closing one of another cashier). Openings and closings go through the outbox.
    fn sign_on(&mut self) {
        self.signed_on = true;
        self.screen.shift = (0, 0, Money::zero(self.currency));
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
        let shift_id = self.ids.shift_id();
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
        self.signed_on = false;
        if self.shift.take().is_some()
            && let Err(e) = self.outbox.close_shift(UnixMillis::now())
        {
            self.show(LaneEventKind::Problem { message: format!("cannot close the cashier's shift: {e}") });
        }
    }

    fn add_product(&mut self, gtin: ProductCode) {
        let Some(product) = self.catalog.get(&gtin).cloned() else {
            self.show(LaneEventKind::UnknownProduct { gtin: gtin.to_string() });
            return;
        };
        if product.price.minor_units == 0 {
            // An open-price item: the cashier types its price, and confirms it with a second key press.
            let name = product.name.clone();
            self.screen.open_price = Some(screen::PendingOpenPrice { product, price: None });
            self.show(LaneEventKind::OpenPriceAsked { name, price: None });
            return;
        }
        self.add_to_basket(&product, None);
    }

    /// Adds one of `product` (at `typed_price` for an open-price item), starting a sale when none is open.
    fn add_to_basket(&mut self, product: &Product, typed_price: Option<Money>) -> bool {
        if self.sale.is_none() {
            if let Some(message) = &self.closed_by_store {
                self.show(LaneEventKind::LaneClosedByStore { message: message.clone() });
                return false;
            }
            let mut sale = OpenSale::new(self.ids.sale_id(), self.currency);
            sale.member_id = self.next_sale_member.take();
            self.sale = Some(sale);
            // The screens forget the last customer's basket and payment.
            self.screen.paid_basket = None;
        }
        self.screen.outcome = None;
        // A code held for the cashier's confirmation was for another amount: the customer shows it again.
        self.screen.held_code = None;
        let Some(sale) = self.sale.as_mut() else { return false };
        let added = match typed_price {
            None => sale.add(product),
            Some(price) => sale.add_open_price(product, price),
        };
        if let Err(e) = added {
            let message = format!("cannot add {}: {e}", product.name);
            self.show(LaneEventKind::Problem { message });
            return false;
        }
        let event = LaneEventKind::ItemAdded {
            sale_id: sale.sale_id.to_string(),
            name: product.name.clone(),
            price: typed_price.unwrap_or(product.price),
            basket_items: sale.items(),
            basket_total: sale.total,
        };
        self.show(event);
        self.reprice();
        true
    }

    fn send_heartbeat(&self, ctx: &mut Context<Self>) {
        let closed = self.done.is_none();
        let version = self.promotions.version;
        let request =
            convert::heartbeat_request(&self.lane_id, self.sale.as_ref(), self.paying, closed, &self.summary, version);
        ctx.spawn(client::heartbeat(self.client.clone(), request).into_actor(self).map(
            |answer, till, ctx| match answer {
                Ok(answer) => {
                    if till.paying && till.screen.step != answer.progress {
                        till.screen.step = answer.progress;
                        till.publish();
                    }
                    till.closed_by_store_is(answer.closed);
                    if let Some(promotions) = answer.promotions {
                        tracing::info!(lane_id = %till.lane_id, promotions = promotions.list.len(), "promotions updated");
                        till.promotions = promotions;
                        if !till.paying && till.unsettled.is_none() {
                            till.reprice();
                        }
                    }
                    if !till.reachable {
                        till.reachable = true;
                        till.show(LaneEventKind::CoordinatorReachable);
                        till.deliver_outbox(ctx);
                    }
                }
                Err(status) if retryable(&status) && till.reachable => {
                    till.reachable = false;
                    till.show(LaneEventKind::CoordinatorUnreachable { reason: status.message().to_owned() });
                }
                Err(status) => tracing::debug!(%status, "heartbeat not delivered"),
            },
        ));
    }

    /// Notes whether a manager has closed the lane (`Some(why)`) and shows the cashier when that changes.
    fn closed_by_store_is(&mut self, closed: Option<String>) {
        if closed == self.closed_by_store {
            return;
        }
        match &closed {
            Some(message) => self.show(LaneEventKind::LaneClosedByStore { message: message.clone() }),
            None => self.show(LaneEventKind::LaneOpenedByStore),
        }
        self.closed_by_store = closed;
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
        let delivery = outbox::deliver(self.client.clone(), self.outbox.clone(), pending, self.currency);
        ctx.spawn(delivery.into_actor(self).map(|shown, till, _| {
            till.delivering = false;
            for kind in shown {
                till.show(kind);
            }
        }));
    }

    /// Sends `charge` (a new one, or the same one again to learn its outcome) and settles the basket.
    fn charge(&mut self, charge: Charge, ctx: &mut Context<Self>) -> ResponseActFuture<Self, ()> {
        self.paying = true;
        self.screen.outcome = None;
        self.screen.notice = None;
        self.screen.charging = Some(charge.code.masked().to_string());
        self.publish();
        self.send_heartbeat(ctx);
        // The screens follow the charge: the store is asked how it goes until it has an outcome.
        if self.screen.publish.is_some() && self.progress_poll.is_none() {
            self.progress_poll = Some(ctx.run_interval(PAYING_HEARTBEAT, |till, ctx| {
                if till.paying {
                    till.send_heartbeat(ctx);
                }
            }));
        }
        let client = self.client.clone();
        let sent = async move {
            let outcome = client::pay(client, &charge).await;
            (outcome, charge)
        };
        Box::pin(sent.into_actor(self).map(|(outcome, charge), till, ctx| {
            till.report_charged(&outcome, &charge);
            till.unsettled = matches!(outcome, PayFlow::Uncertain { .. }).then_some(charge);
            till.settle(outcome, ctx);
            till.send_heartbeat(ctx);
        }))
    }

    /// Tells the scanner a code was charged, so that it never hands the code over again.
    fn report_charged(&self, outcome: &PayFlow, charge: &Charge) {
        if let PayFlow::Paid { .. } = outcome {
            self.charges_to.do_send(PaymentCodeCharged(charge.code.clone()));
        }
    }

    /// Asks again about the charge whose outcome was not known.
    fn retry_unsettled(&mut self, ctx: &mut Context<Self>) {
        if self.paying || !self.reachable {
            return;
        }
        if let Some(charge) = self.unsettled.clone() {
            let retry = self.charge(charge, ctx);
            ctx.spawn(retry);
        }
    }

    fn settle(&mut self, outcome: PayFlow, ctx: &mut Context<Self>) {
        self.paying = false;
        if let Some(poll) = self.progress_poll.take() {
            ctx.cancel_future(poll);
        }
        self.screen.charging = None;
        self.screen.step = client::ChargeStep::default();
        let sale_id = self.sale.as_ref().map(|s| s.sale_id.to_string()).unwrap_or_default();
        match outcome {
            PayFlow::Paid { provider, masked_code, out_trade_no } => {
                if let Some(sale) = self.sale.take() {
                    self.summary.sales += 1;
                    self.summary.items += u64::from(sale.items());
                    if let Ok(total) = self.summary.paid_total.checked_add(sale.to_pay()) {
                        self.summary.paid_total = total;
                    }
                    self.queue_finished_sale(&sale, &out_trade_no);
                    self.deliver_outbox(ctx);
                    let (sales, items, total) = &mut self.screen.shift;
                    *sales += 1;
                    *items += u64::from(sale.items());
                    *total = total.checked_add(sale.to_pay()).unwrap_or(*total);
                    self.screen.paid_basket = Some(screen::basket_view(&sale));
                    // An open-price item typed and never added is not carried to the next customer.
                    self.screen.open_price = None;
                    self.screen.outcome = Some(PaymentPhase::Paid {
                        sale_id: sale.sale_id.to_string(),
                        amount: sale.to_pay().into(),
                        provider: provider.clone(),
                        masked_code: masked_code.clone(),
                    });
                    self.show(LaneEventKind::SalePaid {
                        sale_id: sale.sale_id.to_string(),
                        items: sale.items(),
                        total: sale.to_pay(),
                        provider,
                        masked_code,
                        out_trade_no,
                    });
                }
            }
            PayFlow::Declined { message } => {
                self.summary.declined += 1;
                self.screen.outcome = Some(PaymentPhase::Declined { reason: message.clone() });
                self.show(LaneEventKind::PaymentDeclined { sale_id, message });
            }
            PayFlow::Uncertain { message } => self.show(LaneEventKind::PaymentUncertain { sale_id, message }),
            PayFlow::Refused { message } => {
                self.screen.outcome = Some(PaymentPhase::Declined { reason: message.clone() });
                self.show(LaneEventKind::PaymentDeclined { sale_id, message });
            }
        }
    }

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
        let finished = sale.finished(&self.lane_id, self.shift.as_ref(), out_trade_no);
        if let Err(e) = self.outbox.push(&OutboxItem::Sale(finished)) {
            let message = format!("sale {} is paid but cannot be kept on this lane's disk: {e}", sale.sale_id);
            self.show(LaneEventKind::Problem { message });
        }
    }

    /// After the last frame: the uncertain charge resolved, the basket left abandoned, the cashier signed
    /// off, the outbox delivered if it can be, the summary reported, the last heartbeat sent.
    fn close(&mut self) -> ResponseActFuture<Self, ()> {
        self.closing = true;
        // A charge still uncertain is asked about until its outcome is known (the store settles every
        // charge within its query deadline), so a paid sale is not left unreported.
        let resolve: ResponseActFuture<Self, ()> = match self.unsettled.clone() {
            None => Box::pin(actix::fut::ready(())),
            Some(charge) => Box::pin(client::resolve_before_closing(self.client.clone(), charge).into_actor(self).map(
                |outcome, till, ctx| {
                    till.unsettled = None;
                    till.settle(outcome, ctx);
                },
            )),
        };
        Box::pin(
            resolve
                .then(|(), till, _| {
                    // Whatever basket is left now was never paid: its coupon goes back.
                    let abandoned = till.sale.take();
                    if let Some(sale) = &abandoned {
                        tracing::warn!(lane_id = %till.lane_id, sale_id = %sale.sale_id, items = sale.items(), "lane closing with an unpaid basket: sale abandoned");
                    }
                    let release = abandoned.and_then(|sale| {
                        let coupon = sale.coupon?;
                        Some(pb::ReleaseCouponRequest {
                            lane_id: till.lane_id.to_string(),
                            sale_id: sale.sale_id.to_string(),
                            coupon_id: coupon.coupon_id,
                        })
                    });
                    let client = till.client.clone();
                    async move {
                        if let Some(request) = release {
                            client::release_coupon(client, request).await;
                        }
                    }
                    .into_actor(till)
                })
                .then(|(), till, _| {
                    // The cashier signs off with the lane.
                    till.sign_off();
                    // The outbox goes out before the lane closes (for a while if the store is
                    // restarting); what still cannot be delivered stays on disk for the next start.
                    outbox::deliver_before_closing(till.client.clone(), till.outbox.clone(), till.currency)
                        .into_actor(till)
                })
                .map(|shown, till, ctx| {
                    for kind in shown {
                        till.show(kind);
                    }
                    let undelivered = outbox::undelivered_sales(&till.outbox);
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
        if !frame.scans.is_empty() {
            self.screen.scanner_hint = None;
            let refused = if self.paused {
                Some("the lane is paused: resume it to scan")
            } else if !self.signed_on {
                Some("no cashier is signed on: sign on to scan")
            } else {
                None
            };
            if let Some(reason) = refused {
                self.show(LaneEventKind::ScanNotTaken { reason: reason.to_owned() });
                return Box::pin(actix::fut::ready(()));
            }
        }
        let mut payment_code: Option<PaymentCode> = None;
        for scan in frame.scans {
            match scan {
                ScannedCode::Product(gtin) => self.add_product(gtin),
                ScannedCode::Member(code) => self.member_scanned(code, ctx),
                ScannedCode::Coupon(code) => self.coupon_scanned(code, ctx),
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
        if self.sale.as_ref().is_none_or(|s| s.lines.is_empty()) {
            self.show(LaneEventKind::ScanItemsFirst);
            return Box::pin(actix::fut::ready(()));
        }
        if !self.reachable {
            // A wallet code cannot be kept and charged later: it expires within a minute.
            self.show(LaneEventKind::WalletPaymentsUnavailable);
            return Box::pin(actix::fut::ready(()));
        }
        if self.screen.open_price.is_some() {
            let reason = "an open-price item waits: add it (Enter) or drop it (Esc) before the payment".to_owned();
            self.show(LaneEventKind::ScanNotTaken { reason });
            return Box::pin(actix::fut::ready(()));
        }
        let Some(sale) = self.sale.as_ref() else { return Box::pin(actix::fut::ready(())) };
        if let Some(threshold) = self.screen.confirm_above
            && sale.to_pay().minor_units > threshold.minor_units
        {
            // The cashier checks the amount before it is charged; the code waits in memory only.
            let (sale_id, amount) = (sale.sale_id.to_string(), sale.to_pay());
            self.screen.held_code = Some((code, std::time::Instant::now()));
            self.show(LaneEventKind::AmountToConfirm { sale_id, amount });
            return Box::pin(actix::fut::ready(()));
        }
        self.start_charge(code, ctx)
    }
}

impl Till {
    /// Charges the open sale to `code` (a coupon the basket does not reach is let go first).
    fn start_charge(&mut self, code: PaymentCode, ctx: &mut Context<Self>) -> ResponseActFuture<Self, ()> {
        let Some(sale) = self.sale.as_mut() else { return Box::pin(actix::fut::ready(())) };
        tracing::info!(lane_id = %self.lane_id, sale_id = %sale.sale_id, code = %code.masked(), total = %sale.total, "charging");
        // A coupon the basket does not reach the minimum of is let go, for another customer.
        if sale.coupon.is_some()
            && sale.discount().minor_units == 0
            && let Some(coupon) = sale.coupon.take()
        {
            let request = pb::ReleaseCouponRequest {
                lane_id: self.lane_id.to_string(),
                sale_id: sale.sale_id.to_string(),
                coupon_id: coupon.coupon_id,
            };
            ctx.spawn(client::release_coupon(self.client.clone(), request).into_actor(self));
        }
        let Some(sale) = self.sale.as_mut() else { return Box::pin(actix::fut::ready(())) };
        let charge = sale.next_charge(&self.lane_id, code, self.shift.as_ref());
        self.charge(charge, ctx)
    }
}

impl Handler<FramesEnded> for Till {
    type Result = ResponseActFuture<Self, ()>;

    fn handle(&mut self, _: FramesEnded, _: &mut Context<Self>) -> Self::Result {
        self.close()
    }
}
