//! Coupons in the ledger: issued in order, and moved from state to state by compare-and-swap, so that of two
//! lanes scanning the same coupon at the same moment exactly one holds it.

use super::{Result, Store, get, insert_if_absent, io, page};
use crate::{CouponId, CouponRecord, CouponState, SaleId, StorageError};

impl Store {
    /// Issues a coupon under the next coupon number, `C00000001` on (durable with the next commit);
    /// `coupon.coupon_id` is replaced by it.
    pub fn issue_coupon(&self, mut coupon: CouponRecord) -> Result<CouponRecord> {
        loop {
            let n = super::next_number(&self.coupons, "coupons", 'C')?;
            coupon.coupon_id = CouponId::numbered(n);
            let key = coupon.coupon_id.as_str().as_bytes();
            if self.folder.write(|| insert_if_absent(&self.coupons, "coupons", key, &coupon))?.is_none() {
                return Ok(coupon);
            }
        }
    }

    pub fn coupon(&self, coupon_id: &CouponId) -> Result<Option<CouponRecord>> {
        get(&self.coupons, "coupons", coupon_id.as_str().as_bytes())
    }

    /// Up to `limit` coupons after the key `after`, in order of issue; with their keys.
    pub fn coupons_page(&self, after: Option<&[u8]>, limit: usize) -> Result<Vec<(Vec<u8>, CouponRecord)>> {
        page(&self.coupons, "coupons", b"", after, limit)
    }

    /// Moves a coupon to the state `decide` gives for its current record, atomically: if another writer
    /// moved it in between, `decide` is asked again about the new record. `decide` answers the new state
    /// (`Ok(None)`: leave it as it is) or why not. Returns the record as it ends up (durable with the next
    /// commit), or `decide`'s refusal; `None` when there is no such coupon.
    pub fn move_coupon<E>(
        &self,
        coupon_id: &CouponId,
        decide: impl Fn(&CouponRecord) -> std::result::Result<Option<CouponState>, E>,
    ) -> Result<Option<std::result::Result<CouponRecord, E>>> {
        let key = coupon_id.as_str().as_bytes();
        loop {
            let Some(current) = self.coupons.get(key).map_err(io("reading"))? else { return Ok(None) };
            let record: CouponRecord = super::decode("coupons", key, &current)?;
            let state = match decide(&record) {
                Err(refusal) => return Ok(Some(Err(refusal))),
                Ok(None) => return Ok(Some(Ok(record))),
                Ok(Some(state)) => state,
            };
            let moved = CouponRecord { state, ..record };
            let bytes = super::encode("coupons", &moved)?;
            let swapped = self.folder.write(|| {
                self.coupons.compare_and_swap(key, Some(&current), Some(bytes)).map_err(io("writing a coupon"))
            })?;
            if swapped.is_ok() {
                return Ok(Some(Ok(moved)));
            }
        }
    }

    /// Notes that `coupon_id` goes with the sale `sale_id` (or, with `None`, that no coupon does).
    pub fn set_sale_coupon(&self, sale_id: &SaleId, coupon_id: Option<&CouponId>) -> Result<()> {
        let key = sale_id.as_str().as_bytes();
        self.folder.write(|| match coupon_id {
            Some(coupon_id) => {
                self.sale_coupons.insert(key, coupon_id.as_str().as_bytes()).map(drop).map_err(io("writing"))
            }
            None => self.sale_coupons.remove(key).map(drop).map_err(io("writing")),
        })
    }

    /// What promotions and a coupon took off a recorded sale: its lines at their prices less what was paid;
    /// `None` when nothing was.
    pub fn discount_of_sale(&self, sale: &crate::SaleRecord) -> Result<Option<crate::Money>> {
        let basket: i64 =
            sale.lines.iter().map(|l| l.unit_price.minor_units.saturating_mul(i64::from(l.quantity))).sum();
        let off = basket - sale.total.minor_units;
        Ok((off > 0).then(|| crate::Money::new(off, sale.total.currency)))
    }

    /// Notes what was taken off a paid sale (durable with the next commit).
    pub fn put_sale_discount(&self, discount: &crate::SaleDiscount) -> Result<()> {
        let key = discount.sale_id.as_str().as_bytes();
        self.put(&self.sale_discounts, ("sale discount", "writing a sale's discount"), key, discount)
    }

    /// Every paid sale's discount, for the totals.
    pub fn sale_discounts(&self) -> Result<Vec<crate::SaleDiscount>> {
        super::all(&self.sale_discounts, "sale_discounts")
    }

    /// The coupon that goes with a sale, if any.
    pub fn coupon_of_sale(&self, sale_id: &SaleId) -> Result<Option<CouponId>> {
        read_coupon_id(&self.sale_coupons, sale_id)
    }

    /// Notes the coupon a sale holds now.
    pub fn set_sale_held_coupon(&self, sale_id: &SaleId, coupon_id: &CouponId) -> Result<()> {
        let key = sale_id.as_str().as_bytes();
        self.folder.write(|| {
            self.sale_held_coupons.insert(key, coupon_id.as_str().as_bytes()).map(drop).map_err(io("writing"))
        })
    }

    /// The coupon a sale last held, applied or not.
    pub fn held_coupon_of_sale(&self, sale_id: &SaleId) -> Result<Option<CouponId>> {
        read_coupon_id(&self.sale_held_coupons, sale_id)
    }
}

fn read_coupon_id(tree: &sled::Tree, sale_id: &SaleId) -> Result<Option<CouponId>> {
    let Some(bytes) = tree.get(sale_id.as_str().as_bytes()).map_err(io("reading"))? else { return Ok(None) };
    CouponId::parse(&String::from_utf8_lossy(&bytes)).map(Some).map_err(|e| StorageError::Corrupt {
        tree: "sale_coupons",
        key: sale_id.to_string(),
        reason: e.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Barrier};

    use crate::{CouponDiscount, Currency, Money, UnixMillis};

    use super::*;

    fn coupon() -> CouponRecord {
        CouponRecord {
            coupon_id: CouponId::numbered(0),
            discount: CouponDiscount::AmountOff(Money::new(500, Currency::CNY)),
            min_basket: Money::new(2_000, Currency::CNY),
            valid_from: UnixMillis(0),
            valid_until: UnixMillis(i64::MAX),
            state: CouponState::Issued,
            issued_at: UnixMillis(1),
            note: "test".into(),
        }
    }

    /// Holds the coupon for `sale` if it is free; the sale holding it otherwise.
    fn hold(store: &Store, coupon_id: &CouponId, sale: &str) -> std::result::Result<CouponRecord, SaleId> {
        let sale_id = SaleId::parse(sale).unwrap();
        store
            .move_coupon(coupon_id, |record| match &record.state {
                CouponState::Issued => Ok(Some(CouponState::Held { sale_id: sale_id.clone(), at: UnixMillis(2) })),
                CouponState::Held { sale_id: holder, .. } if *holder == sale_id => Ok(None),
                CouponState::Held { sale_id: holder, .. } => Err(holder.clone()),
                other => panic!("{other:?}"),
            })
            .unwrap()
            .expect("the coupon exists")
    }

    #[test]
    fn of_many_sales_holding_one_coupon_at_the_same_moment_exactly_one_gets_it() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let first = store.issue_coupon(coupon()).unwrap();
        let second = store.issue_coupon(coupon()).unwrap();
        assert_eq!((first.coupon_id.as_str(), second.coupon_id.as_str()), ("C00000001", "C00000002"));
        for round in 0..20 {
            let coupon = store.issue_coupon(self::coupon()).unwrap().coupon_id;
            let start = Arc::new(Barrier::new(8));
            let threads: Vec<_> = (0..8)
                .map(|lane| {
                    let (store, start, coupon) = (store.clone(), start.clone(), coupon.clone());
                    std::thread::spawn(move || {
                        start.wait();
                        hold(&store, &coupon, &format!("L{lane}-R{round}")).is_ok()
                    })
                })
                .collect();
            let winners = threads.into_iter().map(|t| t.join().unwrap()).filter(|won| *won).count();
            assert_eq!(winners, 1, "round {round}");
        }
        // The holder asking again keeps it; another sale is told who holds it.
        let coupon = first.coupon_id;
        assert!(hold(&store, &coupon, "L1-A").is_ok());
        assert!(hold(&store, &coupon, "L1-A").is_ok());
        assert_eq!(hold(&store, &coupon, "L2-B").unwrap_err().as_str(), "L1-A");
        store.set_sale_coupon(&SaleId::parse("L1-A").unwrap(), Some(&coupon)).unwrap();
        assert_eq!(store.coupon_of_sale(&SaleId::parse("L1-A").unwrap()).unwrap(), Some(coupon));
        assert_eq!(store.coupons_page(None, 100).unwrap().len(), 22);
    }
}
