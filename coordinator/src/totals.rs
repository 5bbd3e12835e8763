//! Sales and payment totals of the store and of each lane, computed from the ledger.

use std::collections::BTreeMap;

use checkout_storage::{ChargeRecord, ChargeStatus, Currency, LaneId, Money, SaleRecord};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Totals {
    pub sales: u64,
    pub items: u64,
    pub sales_total: Money,
    pub payments_paid: u64,
    pub payments_declined: u64,
    pub paid_total: Money,
}

impl Totals {
    pub fn zero(currency: Currency) -> Totals {
        Totals {
            sales: 0,
            items: 0,
            sales_total: Money::zero(currency),
            payments_paid: 0,
            payments_declined: 0,
            paid_total: Money::zero(currency),
        }
    }
}

/// Adds `amount` to `sum`; an amount that cannot be added (overflow, another currency) is logged and left out.
pub(crate) fn add(sum: &mut Money, amount: Money, what: &str) {
    match sum.checked_add(amount) {
        Ok(total) => *sum = total,
        Err(e) => tracing::warn!(error = %e, amount = %amount, "{what} left out of the totals"),
    }
}

/// The store's totals and each lane's, from its sales and charges.
pub fn compute_totals(
    currency: Currency,
    sales: &[SaleRecord],
    charges: &[ChargeRecord],
) -> (Totals, BTreeMap<LaneId, Totals>) {
    let mut store = Totals::zero(currency);
    let mut lanes: BTreeMap<LaneId, Totals> = BTreeMap::new();
    for sale in sales {
        for totals in [&mut store, lanes.entry(sale.lane_id.clone()).or_insert_with(|| Totals::zero(currency))] {
            totals.sales += 1;
            totals.items += sale.items();
            add(&mut totals.sales_total, sale.total, "sale");
        }
    }
    for charge in charges {
        for totals in [&mut store, lanes.entry(charge.lane_id.clone()).or_insert_with(|| Totals::zero(currency))] {
            match charge.status {
                ChargeStatus::Paid => {
                    totals.payments_paid += 1;
                    add(&mut totals.paid_total, charge.amount, "payment");
                }
                ChargeStatus::NewCodeNeeded | ChargeStatus::Failed | ChargeStatus::Reversed => {
                    totals.payments_declined += 1
                }
                ChargeStatus::Pending | ChargeStatus::Unknown | ChargeStatus::Reversing => {}
            }
        }
    }
    (store, lanes)
}
