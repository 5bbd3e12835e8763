//! Promotions in the ledger: created in order, ended early by a manager, and the ones in force for pricing.

use super::{Result, Store, get, insert_if_absent, io, page};
use crate::{PromotionId, PromotionRecord, UnixMillis};

impl Store {
    /// Creates a promotion under the next number, `P00000001` on (durable with the next commit);
    /// `promotion.promotion_id` is replaced by it.
    pub fn create_promotion(&self, mut promotion: PromotionRecord) -> Result<PromotionRecord> {
        loop {
            let n = super::next_number(&self.promotions, "promotions", 'P')?;
            promotion.promotion_id = PromotionId::numbered(n);
            let key = promotion.promotion_id.as_str().as_bytes();
            if self.folder.write(|| insert_if_absent(&self.promotions, "promotions", key, &promotion))?.is_none() {
                self.bump_promotions_version();
                return Ok(promotion);
            }
        }
    }

    pub fn promotion(&self, promotion_id: &PromotionId) -> Result<Option<PromotionRecord>> {
        get(&self.promotions, "promotions", promotion_id.as_str().as_bytes())
    }

    /// Writes a promotion as it now stands (ended early).
    pub fn put_promotion(&self, promotion: &PromotionRecord) -> Result<()> {
        let key = promotion.promotion_id.as_str().as_bytes();
        self.put(&self.promotions, ("promotion", "writing a promotion"), key, promotion)?;
        self.bump_promotions_version();
        Ok(())
    }

    /// Up to `limit` promotions after the key `after`, in order of creation; with their keys.
    pub fn promotions_page(&self, after: Option<&[u8]>, limit: usize) -> Result<Vec<(Vec<u8>, PromotionRecord)>> {
        page(&self.promotions, "promotions", b"", after, limit)
    }

    /// The promotions not over at `at` (in force now or later), for pricing and for the lanes. Read from the
    /// tree only when a promotion was created or ended since the last read, or one of them has run out.
    pub fn promotions_not_over(&self, at: UnixMillis) -> Result<Vec<PromotionRecord>> {
        let version = self.promotions_version();
        let mut cache = self.promotions_cache.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(cached) = cache.as_ref()
            && cached.version == version
            && cached.read_at.0 <= at.0
            && at.0 < cached.first_end.0
        {
            return Ok(cached.promotions.clone());
        }
        let mut promotions = Vec::new();
        for entry in self.promotions.iter() {
            let (key, value) = entry.map_err(io("reading"))?;
            let promotion: PromotionRecord = super::decode("promotions", &key, &value)?;
            if at.0 < end_of(&promotion).0 {
                promotions.push(promotion);
            }
        }
        let first_end = promotions.iter().map(end_of).min_by_key(|end| end.0).unwrap_or(UnixMillis(i64::MAX));
        *cache = Some(Cached { version, read_at: at, first_end, promotions: promotions.clone() });
        Ok(promotions)
    }

    /// Changes whenever a promotion is created or ended in this process (lanes fetch the list again).
    pub fn promotions_version(&self) -> u64 {
        self.promotions_version.load(std::sync::atomic::Ordering::Relaxed)
    }

    fn bump_promotions_version(&self) {
        self.promotions_version.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    }
}

/// When a promotion is over: its end, or when a manager ended it.
fn end_of(promotion: &PromotionRecord) -> UnixMillis {
    match promotion.ended_at {
        Some(ended) if ended.0 < promotion.valid_until.0 => ended,
        _ => promotion.valid_until,
    }
}

/// The promotions not over, as read at `read_at` (under `version`), good until the first of them ends.
pub(super) struct Cached {
    version: u64,
    read_at: UnixMillis,
    first_end: UnixMillis,
    promotions: Vec<PromotionRecord>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Currency, Money, ProductCode, PromotionKind};

    #[test]
    fn promotions_are_numbered_in_order_and_an_ended_one_is_over_and_lanes_see_a_new_version() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let version = store.promotions_version();
        let promotion = |n: i64| PromotionRecord {
            promotion_id: PromotionId::numbered(0),
            gtin: ProductCode::parse("6901234567892").unwrap(),
            kind: PromotionKind::PriceOff(Money::new(100 * n, Currency::CNY)),
            valid_from: UnixMillis(0),
            valid_until: UnixMillis(10_000),
            ended_at: None,
            name: format!("tea week {n}"),
        };
        let first = store.create_promotion(promotion(1)).unwrap();
        let mut second = store.create_promotion(promotion(2)).unwrap();
        assert_eq!((first.promotion_id.as_str(), second.promotion_id.as_str()), ("P00000001", "P00000002"));
        assert!(store.promotions_version() > version);
        assert_eq!(store.promotions_not_over(UnixMillis(5_000)).unwrap().len(), 2);
        second.ended_at = Some(UnixMillis(4_000));
        let before = store.promotions_version();
        store.put_promotion(&second).unwrap();
        assert!(store.promotions_version() > before, "an ended promotion is news for the lanes");
        let left = store.promotions_not_over(UnixMillis(5_000)).unwrap();
        assert_eq!(left.iter().map(|p| p.promotion_id.as_str()).collect::<Vec<_>>(), ["P00000001"]);
        assert!(store.promotions_not_over(UnixMillis(10_000)).unwrap().is_empty());
        assert_eq!(store.promotions_page(None, 10).unwrap().len(), 2);
    }
}
