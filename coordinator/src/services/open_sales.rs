//! Sales started and not paid yet, per lane: a lane (or a hostile one with a lane's token) holds a bounded number.
//!
//! A sale opens with its first charge and closes when it is paid, or when
//! [`OPEN_SALE_WINDOW`] has passed since its last charge (the customer left).
//! Kept in memory only: it bounds work, it is not part of the books.

use std::{
    collections::HashMap,
    sync::Mutex,
    time::{Duration, Instant},
};

use checkout_storage::{LaneId, SaleId};

use crate::{config::OPEN_SALE_WINDOW, error::CoordinatorError};

#[derive(Default)]
pub struct OpenSales(Mutex<HashMap<LaneId, HashMap<SaleId, Instant>>>);

fn forget_stale(sales: &mut HashMap<SaleId, Instant>, now: Instant, window: Duration) {
    sales.retain(|_, last| now.duration_since(*last) < window);
}

impl OpenSales {
    /// Notes a charge of `sale_id` at `lane_id`; a sale not open yet is refused past either cap.
    pub fn admit(
        &self,
        lane_id: &LaneId,
        sale_id: &SaleId,
        per_lane: usize,
        in_all: usize,
    ) -> Result<(), CoordinatorError> {
        let now = Instant::now();
        let mut lanes = self.0.lock().unwrap_or_else(|p| p.into_inner());
        let of_lane = lanes.entry(lane_id.clone()).or_default();
        if let Some(last) = of_lane.get_mut(sale_id) {
            *last = now;
            return Ok(());
        }
        forget_stale(of_lane, now, OPEN_SALE_WINDOW);
        if of_lane.len() >= per_lane {
            return Err(CoordinatorError::ResourceExhausted(format!(
                "lane {lane_id} has {} sales started and not paid: finish one, or wait {} minutes",
                of_lane.len(),
                OPEN_SALE_WINDOW.as_secs() / 60
            )));
        }
        let mut open: usize = lanes.values().map(HashMap::len).sum();
        if open >= in_all {
            lanes.values_mut().for_each(|sales| forget_stale(sales, now, OPEN_SALE_WINDOW));
            lanes.retain(|lane, sales| !sales.is_empty() || lane == lane_id);
            open = lanes.values().map(HashMap::len).sum();
            if open >= in_all {
                return Err(CoordinatorError::ResourceExhausted(format!(
                    "the store has {open} sales started and not paid: no new sale is taken until some are"
                )));
            }
        }
        lanes.entry(lane_id.clone()).or_default().insert(sale_id.clone(), now);
        Ok(())
    }

    /// The sale is paid: it no longer counts.
    pub fn paid(&self, lane_id: &LaneId, sale_id: &SaleId) {
        let mut lanes = self.0.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(sales) = lanes.get_mut(lane_id) {
            sales.remove(sale_id);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_lane_holds_a_bounded_number_of_unpaid_sales() {
        let open = OpenSales::default();
        let lane = LaneId::parse("L1").unwrap();
        let sale = |n: u32| SaleId::parse(&format!("L1-{n}")).unwrap();
        for n in 0..3 {
            open.admit(&lane, &sale(n), 3, 100).unwrap();
        }
        assert!(matches!(open.admit(&lane, &sale(3), 3, 100), Err(CoordinatorError::ResourceExhausted(_))));
        open.admit(&lane, &sale(1), 3, 100).expect("a sale already open takes more charges");
        open.paid(&lane, &sale(1));
        open.admit(&lane, &sale(3), 3, 100).expect("a paid sale frees its place");
        let other = LaneId::parse("L2").unwrap();
        let sale_of_l2 = SaleId::parse("L2-1").unwrap();
        assert!(matches!(open.admit(&other, &sale_of_l2, 3, 3), Err(CoordinatorError::ResourceExhausted(_))));
    }
}
