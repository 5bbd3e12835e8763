//! Delivery of the lane's outbox: finished sales and shift openings and closings, kept on disk until the
//! store has them, sent in order.

use std::time::Duration;

use checkout_storage::{Currency, LaneStore, OutboxItem};

use crate::{
    connection::{CoordinatorClient, retryable, with_timeout},
    convert,
    events::LaneEventKind,
};

/// How long the store may take to take one item of the outbox.
const DELIVERY_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a closing lane keeps trying to deliver its outbox (the store may be restarting); what is
/// still not delivered then stays on disk for the next start.
const CLOSING_GIVE_UP: Duration = Duration::from_secs(10);
/// The pause between two deliveries of the outbox while the lane closes.
const CLOSING_PAUSE: Duration = Duration::from_millis(500);

/// Sends queued items in order; returns what to show the cashier. An item the store refuses for
/// good is set aside (logged at error level) rather than retried forever.
pub(crate) async fn deliver(
    mut client: CoordinatorClient,
    outbox: LaneStore,
    pending: Vec<(u64, OutboxItem)>,
    currency: Currency,
) -> Vec<LaneEventKind> {
    let mut shown = Vec::new();
    for (seq, item) in pending {
        let sent = match &item {
            OutboxItem::Sale(sale) => {
                let request = with_timeout(convert::finish_sale_request(sale), DELIVERY_TIMEOUT);
                client.finish_sale(request).await.map(drop)
            }
            OutboxItem::ShiftOpened(shift) => {
                let request = with_timeout(convert::open_shift_request(shift), DELIVERY_TIMEOUT);
                client.open_shift(request).await.map(drop)
            }
            OutboxItem::ShiftClosed { lane_id, shift_id, closed_at }
            | OutboxItem::ShiftClosedCounted { lane_id, shift_id, closed_at, .. } => {
                let counted = match &item {
                    OutboxItem::ShiftClosedCounted { counted, .. } => Some(counted),
                    _ => None,
                };
                let request = convert::close_shift_request(lane_id, shift_id, *closed_at, counted);
                let request = with_timeout(request, DELIVERY_TIMEOUT);
                client
                    .close_shift(request)
                    .await
                    .map(|report| shown.push(convert::shift_report(report.into_inner(), currency)))
            }
        };
        match sent {
            Ok(()) => {
                if let OutboxItem::Sale(sale) = &item {
                    shown.push(LaneEventKind::SaleDelivered { sale_id: sale.sale_id.to_string() });
                }
            }
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
        OutboxItem::ShiftClosed { shift_id, .. } | OutboxItem::ShiftClosedCounted { shift_id, .. } => {
            format!("the closing of shift {shift_id}")
        }
    }
}

/// Delivers the outbox, trying again until [`CLOSING_GIVE_UP`] has passed while the store cannot be reached.
pub(crate) async fn deliver_before_closing(
    client: CoordinatorClient,
    outbox: LaneStore,
    currency: Currency,
) -> Vec<LaneEventKind> {
    let give_up = tokio::time::Instant::now() + CLOSING_GIVE_UP;
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
        tokio::time::sleep(CLOSING_PAUSE).await;
    }
}

/// Paid sales still waiting in the outbox (shift openings and closings not counted).
pub(crate) fn undelivered_sales(outbox: &LaneStore) -> usize {
    outbox.pending().map(|p| p.iter().filter(|(_, item)| matches!(item, OutboxItem::Sale(_))).count()).unwrap_or(0)
}
