//! One lane of the rush: a real lane (scanner, decoder and till actors, its own outbox) with a hand-held
//! scanner, and the cashier who serves the store's line of customers at it, pulling the trigger on schedule.
//!
//! Every latency is measured from the time the action was scheduled (the cashier's plan), not from when the
//! lane got round to it: a lane that stalls makes every scan waiting behind the stall late, and the figures
//! show it (no coordinated omission).

use std::{
    collections::VecDeque,
    sync::{Arc, Mutex},
    time::Duration,
};

use checkout_lanes::{LaneEvent, LaneEventKind, ScannerTrigger, messages::FrameInput};
use checkout_storage::{SimulatedWallet, UnixMillis};
use tokio::sync::mpsc::{UnboundedReceiver, UnboundedSender};

use super::{
    frames::{ProductFrames, phone_screen},
    measure::{Recorder, SimClock},
    store_model::{Customer, Trouble},
};

/// Tries at one label or code before the cashier gives up on it (a label: the item is left out).
const SCAN_TRIES: u32 = 5;
/// How long a lane may take to tell a charge's outcome before the customer is counted as left unresolved.
const OUTCOME_WAIT: Duration = Duration::from_secs(180);

/// The store's line and what every lane shares.
pub struct Store {
    pub recorder: Arc<Recorder>,
    pub frames: Arc<ProductFrames>,
    pub wallet_seed: Vec<u8>,
    pub vision: bool,
    /// The member codes of the store's members, by member number from 1.
    pub member_codes: Vec<String>,
    /// The codes of the store's coupons, by number from 1.
    pub coupon_codes: Vec<String>,
    line: Mutex<VecDeque<Customer>>,
    /// Arrival times of every customer, in order (to count who is waiting).
    arrivals: Vec<f64>,
}

impl Store {
    pub fn new(
        customers: Vec<Customer>,
        recorder: Arc<Recorder>,
        frames: Arc<ProductFrames>,
        wallet_seed: Vec<u8>,
        vision: bool,
        member_codes: Vec<String>,
        coupon_codes: Vec<String>,
    ) -> Store {
        let arrivals = customers.iter().map(|c| c.arrives_s).collect();
        let line = Mutex::new(customers.into());
        Store { recorder, frames, wallet_seed, vision, member_codes, coupon_codes, line, arrivals }
    }

    fn next_customer(&self) -> Option<Customer> {
        self.line.lock().unwrap_or_else(std::sync::PoisonError::into_inner).pop_front()
    }

    /// Customers who have arrived by now and are not yet at a till.
    pub fn waiting(&self) -> u64 {
        let now = self.recorder.clock.now_s();
        let arrived = self.arrivals.partition_point(|t| *t <= now) as u64;
        let served = self.arrivals.len() - self.line.lock().unwrap_or_else(std::sync::PoisonError::into_inner).len();
        arrived.saturating_sub(served as u64)
    }
}

/// How one payment attempt ended, as the lane showed it.
enum Shown {
    Paid {
        sale_id: String,
        out_trade_no: String,
    },
    Declined,
    StoreUnreachable,
    /// The lane said something else (a payment code with an empty basket): a bug of the rush or the lane.
    Refused,
    /// No outcome within [`OUTCOME_WAIT`], or the lane stopped.
    NoOutcome,
}

/// A lane's events: a sale the store recorded goes straight to the recorder (the commit latency), the rest to
/// the lane's cashier.
pub async fn pump_events(
    mut events: UnboundedReceiver<LaneEvent>,
    to_cashier: UnboundedSender<LaneEventKind>,
    recorder: Arc<Recorder>,
) {
    while let Some(event) = events.recv().await {
        match event.kind {
            LaneEventKind::SaleDelivered { sale_id } => recorder.sale_recorded(&sale_id),
            kind => {
                let _ = to_cashier.send(kind);
            }
        }
    }
}

/// The cashier of one lane.
pub struct Cashier {
    pub trigger: ScannerTrigger,
    pub events: UnboundedReceiver<LaneEventKind>,
    pub store: Arc<Store>,
}

impl Cashier {
    fn clock(&self) -> SimClock {
        self.store.recorder.clock
    }

    async fn sleep_until(&self, sim_s: f64) {
        tokio::time::sleep_until(self.clock().at(sim_s).into()).await;
    }

    /// Serves customers from the line until it is empty; then puts the scanner down (the lane closes).
    pub async fn serve(mut self) {
        let mut free_at = 0.0f64;
        while let Some(customer) = self.store.next_customer() {
            let start = customer.arrives_s.max(free_at);
            self.sleep_until(start).await;
            self.store.recorder.customer_started();
            let Some(done_at) = self.serve_customer(&customer, start).await else { return };
            free_at = done_at + customer.leaving_s;
        }
    }

    /// Scans the basket and takes the payment; the simulated time it ended, or `None` if the lane stopped.
    async fn serve_customer(&mut self, customer: &Customer, start: f64) -> Option<f64> {
        let mut due = start;
        if let Some(code) = customer.member.and_then(|m| self.store.member_codes.get(m as usize - 1)).cloned() {
            // The member shows the code in their app while the basket is unloaded.
            let (seed, vision) = (customer.seed ^ 0x6d65_6d62, self.store.vision);
            let frame = tokio::task::spawn_blocking(move || phone_screen(&code, seed, vision)).await.ok()?.ok()?;
            self.scan_member(frame, start + 2.0).await?;
        }
        for (i, item) in customer.items.iter().enumerate() {
            due += customer.item_gaps_s.get(i).copied().unwrap_or(3.0);
            let pose = customer.seed.wrapping_add(i as u64);
            let frame = self.store.frames.frame(*item, pose)?;
            self.scan_item(frame, due).await?;
        }
        if let Some(code) = customer.coupon.and_then(|c| self.store.coupon_codes.get(c as usize - 1)).cloned() {
            // The customer shows a coupon from their app once the items are in.
            let (seed, vision) = (customer.seed ^ 0x636f_7570, self.store.vision);
            let frame = tokio::task::spawn_blocking(move || phone_screen(&code, seed, vision)).await.ok()?.ok()?;
            due += 3.0;
            self.scan_coupon(frame, due).await?;
        }
        self.pay(customer, due + customer.code_after_s).await
    }

    /// Pulls the trigger on a label at `due` until it scans; the latency from `due` to the item on the
    /// till goes to the recorder.
    async fn scan_item(&mut self, frame: FrameInput, due: f64) -> Option<()> {
        let scheduled = self.clock().at(due);
        let mut at = due;
        for _ in 0..SCAN_TRIES {
            self.sleep_until(at).await;
            let read = self.trigger.pull(frame.clone()).await?;
            self.drain_events();
            if read.scans > 0 {
                self.store.recorder.item_scanned(scheduled.elapsed());
                return Some(());
            }
            self.store.recorder.rescanned();
            at = self.clock().now_s() + 1.0;
        }
        Some(())
    }

    /// Pulls the trigger on a member code (once more if nothing was read); the lane asks the store who it is.
    async fn scan_member(&mut self, frame: FrameInput, due: f64) -> Option<()> {
        let mut at = due;
        for _ in 0..2 {
            self.sleep_until(at).await;
            let read = self.trigger.pull(frame.clone()).await?;
            if read.scans > 0 {
                return Some(());
            }
            self.store.recorder.rescanned();
            at = self.clock().now_s() + 1.0;
        }
        Some(())
    }

    /// Pulls the trigger on a coupon and waits for the lane to apply or refuse it.
    async fn scan_coupon(&mut self, frame: FrameInput, due: f64) -> Option<()> {
        self.sleep_until(due).await;
        self.drain_events();
        let read = self.trigger.pull(frame).await?;
        if read.scans == 0 {
            self.store.recorder.coupon("not_read");
            return Some(());
        }
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        loop {
            match tokio::time::timeout_at(deadline, self.events.recv()).await {
                Ok(Some(LaneEventKind::CouponApplied { .. })) => break self.store.recorder.coupon("applied"),
                Ok(Some(LaneEventKind::CouponRefused { .. })) => break self.store.recorder.coupon("refused"),
                Ok(Some(_)) => {}
                Ok(None) | Err(_) => break self.store.recorder.coupon("no_answer"),
            }
        }
        Some(())
    }

    fn drain_events(&mut self) {
        while self.events.try_recv().is_ok() {}
    }

    /// The customer shows codes until one is paid; the simulated time it was.
    async fn pay(&mut self, customer: &Customer, first_due: f64) -> Option<f64> {
        let mut due = first_due;
        let mut wallet = 0usize;
        let mut attempt = 0u32;
        loop {
            attempt += 1;
            let (provider, number) = customer.wallets[wallet.min(customer.wallets.len() - 1)];
            let expired = customer.trouble == Trouble::ExpiredCode && attempt == 1;
            let shown_at = if expired { UnixMillis(UnixMillis::now().0 - 5 * 60_000) } else { UnixMillis::now() };
            let code = SimulatedWallet::new(&self.store.wallet_seed, provider, number).issue_code(shown_at);
            let vision = self.store.vision;
            let seed = customer.seed.wrapping_add(u64::from(attempt) << 32);
            let digits = code.expose_digits().to_owned();
            let frame = tokio::task::spawn_blocking(move || phone_screen(&digits, seed, vision)).await.ok()?.ok()?;
            self.sleep_until(due).await;
            let scheduled = self.clock().at(due);
            self.drain_events();
            let read = self.trigger.pull(frame).await?;
            if read.scans == 0 {
                self.store.recorder.rescanned();
                due = self.clock().now_s() + 1.5;
                continue;
            }
            let shown = self.outcome().await;
            let latency = scheduled.elapsed();
            let now = self.clock().now_s();
            let recorder = &self.store.recorder;
            match shown {
                Shown::Paid { sale_id, out_trade_no } => {
                    recorder.payment("paid", latency);
                    recorder.sale_paid(&sale_id, &out_trade_no);
                    if let Some(member) = customer.member {
                        recorder.member_sale_paid(&sale_id, member);
                    }
                    return Some(now);
                }
                Shown::Declined => {
                    let why = match customer.trouble {
                        Trouble::ExpiredCode if expired => "declined_expired_code",
                        Trouble::ShortBalance if wallet == 0 => "declined_short_balance",
                        _ => "declined_other",
                    };
                    recorder.payment(why, latency);
                    if customer.trouble == Trouble::ShortBalance && wallet == 0 {
                        wallet = 1;
                        due = now + 10.0; // another wallet app
                    } else {
                        due = now + 6.0; // a fresh code
                    }
                }
                Shown::StoreUnreachable => {
                    recorder.payment("store_unreachable", latency);
                    due = now + 15.0;
                }
                Shown::Refused => {
                    recorder.payment("refused_by_lane", latency);
                    due = now + 5.0;
                }
                Shown::NoOutcome => {
                    recorder.payment("no_outcome", latency);
                    return None;
                }
            }
        }
    }

    /// What the lane showed for the payment code just scanned; waits while the charge is uncertain.
    async fn outcome(&mut self) -> Shown {
        let deadline = tokio::time::Instant::now() + OUTCOME_WAIT;
        loop {
            let event = match tokio::time::timeout_at(deadline, self.events.recv()).await {
                Ok(Some(event)) => event,
                Ok(None) | Err(_) => return Shown::NoOutcome,
            };
            match event {
                LaneEventKind::SalePaid { sale_id, out_trade_no, .. } => return Shown::Paid { sale_id, out_trade_no },
                LaneEventKind::PaymentDeclined { .. } => return Shown::Declined,
                LaneEventKind::WalletPaymentsUnavailable => return Shown::StoreUnreachable,
                LaneEventKind::ScanItemsFirst | LaneEventKind::LaneClosedByStore { .. } => return Shown::Refused,
                // Uncertain: the lane asks again at its next heartbeat, and shows the outcome then.
                _ => {}
            }
        }
    }
}
