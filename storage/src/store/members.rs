//! Members and their points in the ledger: who they are, which sale each is attached to, and every movement
//! of their points, at most one per sale and reason (a sale delivered twice earns once).

use super::{Result, Store, get, insert_if_absent, io, page};
use crate::{MemberId, MemberKey, MemberRecord, PointsEntry, PointsReason, SaleId, StorageError, UnixMillis};

pub(super) const MEMBER_KEY: &[u8] = b"checkout:member-key";

/// A member's points key: member, sale and reason, so that each movement is written once.
fn points_key(entry: &PointsEntry) -> Vec<u8> {
    let mut key = points_prefix(&entry.member_id);
    key.extend_from_slice(entry.sale_id.as_str().as_bytes());
    key.push(0);
    match &entry.reason {
        PointsReason::Sale => key.push(b'E'),
        PointsReason::Refund { out_refund_no } => {
            key.push(b'R');
            key.extend_from_slice(out_refund_no.as_bytes());
        }
        PointsReason::Reversal => key.push(b'V'),
    }
    key
}

fn points_prefix(member_id: &MemberId) -> Vec<u8> {
    let mut key = member_id.as_str().as_bytes().to_vec();
    key.push(0);
    key
}

impl Store {
    /// The key that signs this store's member codes.
    pub fn member_key(&self) -> MemberKey {
        self.member_key.as_ref().clone()
    }

    /// Enrols a new member under the next member number, `M00000001` on (durable with the next commit).
    pub fn add_member(&self, name: &str, now: UnixMillis) -> Result<MemberRecord> {
        loop {
            // Two enrolments at once race for the next number and the loser takes the one after.
            let n = super::next_number(&self.members, "members", 'M')?;
            let member_id = MemberId::numbered(n);
            let member = MemberRecord { member_id, name: name.to_owned(), created_at: now, blocked: None };
            let key = member.member_id.as_str().as_bytes();
            if self.folder.write(|| insert_if_absent(&self.members, "members", key, &member))?.is_none() {
                return Ok(member);
            }
        }
    }

    pub fn member(&self, member_id: &MemberId) -> Result<Option<MemberRecord>> {
        get(&self.members, "members", member_id.as_str().as_bytes())
    }

    /// Writes a member's record as it now stands (blocked or unblocked).
    pub fn put_member(&self, member: &MemberRecord) -> Result<()> {
        self.put(&self.members, ("member", "writing a member"), member.member_id.as_str().as_bytes(), member)
    }

    /// Attaches `member_id` to the sale `sale_id` (a later scan of another member replaces it, until the sale
    /// is paid).
    pub fn attach_member(&self, sale_id: &SaleId, member_id: &MemberId) -> Result<()> {
        self.folder.write(|| {
            self.sale_members
                .insert(sale_id.as_str().as_bytes(), member_id.as_str().as_bytes())
                .map(drop)
                .map_err(io("attaching a member to a sale"))
        })
    }

    /// The member attached to a sale, if any.
    pub fn member_of_sale(&self, sale_id: &SaleId) -> Result<Option<MemberId>> {
        let Some(bytes) = self.sale_members.get(sale_id.as_str().as_bytes()).map_err(io("reading"))? else {
            return Ok(None);
        };
        let text = String::from_utf8_lossy(&bytes);
        MemberId::parse(&text).map(Some).map_err(|e| StorageError::Corrupt {
            tree: "sale_members",
            key: sale_id.to_string(),
            reason: e.to_string(),
        })
    }

    /// Writes a movement of points unless the same one (member, sale, reason) is there; returns whether it was
    /// new. Durable with the next commit.
    pub fn move_points(&self, entry: &PointsEntry) -> Result<bool> {
        let key = points_key(entry);
        Ok(self.folder.write(|| insert_if_absent(&self.member_points, "member_points", &key, entry))?.is_none())
    }

    /// A member's points movements, in order of sale, after the key `after`; with their keys.
    pub fn points_page(
        &self,
        member_id: &MemberId,
        after: Option<&[u8]>,
        limit: usize,
    ) -> Result<Vec<(Vec<u8>, PointsEntry)>> {
        page(&self.member_points, "member_points", &points_prefix(member_id), after, limit)
    }

    /// Every movement of a member's points for one sale (earned, taken back).
    pub fn points_of_sale(&self, member_id: &MemberId, sale_id: &SaleId) -> Result<Vec<PointsEntry>> {
        let mut prefix = points_prefix(member_id);
        prefix.extend_from_slice(sale_id.as_str().as_bytes());
        prefix.push(0);
        Ok(page(&self.member_points, "member_points", &prefix, None, usize::MAX)?.into_iter().map(|(_, e)| e).collect())
    }

    /// Points credited and points taken back (as a positive number) over every movement `keep` admits. Reads
    /// every movement of the live ledger.
    pub fn points_moved(&self, keep: impl Fn(&PointsEntry) -> bool) -> Result<(i64, i64)> {
        let (mut granted, mut taken_back) = (0i64, 0i64);
        for entry in self.member_points.iter() {
            let (key, value) = entry.map_err(io("reading"))?;
            let entry: PointsEntry = super::decode("member_points", &key, &value)?;
            if !keep(&entry) {
                continue;
            }
            if entry.points >= 0 {
                granted = granted.saturating_add(entry.points);
            } else {
                taken_back = taken_back.saturating_add(-entry.points);
            }
        }
        Ok((granted, taken_back))
    }

    /// A member's points now: every movement added up.
    pub fn points_balance(&self, member_id: &MemberId) -> Result<i64> {
        let mut balance = 0i64;
        for entry in self.member_points.scan_prefix(points_prefix(member_id)) {
            let (key, value) = entry.map_err(io("reading"))?;
            let entry: PointsEntry = super::decode("member_points", &key, &value)?;
            balance = balance.saturating_add(entry.points);
        }
        Ok(balance)
    }
}

#[cfg(test)]
mod tests {
    use crate::{OutTradeNo, PointsReason};

    use super::*;

    fn entry(member: &MemberId, sale: &str, points: i64, reason: PointsReason) -> PointsEntry {
        PointsEntry {
            member_id: member.clone(),
            sale_id: SaleId::parse(sale).unwrap(),
            out_trade_no: OutTradeNo::parse(&format!("S001-{sale}-1")).unwrap(),
            points,
            reason,
            at: UnixMillis(1_000),
        }
    }

    #[test]
    fn points_move_once_per_sale_and_reason_and_survive_reopening() {
        let dir = tempfile::tempdir().unwrap();
        let (member, key) = {
            let store = Store::open(dir.path()).unwrap();
            let member = store.add_member("Wang Fang", UnixMillis(1)).unwrap();
            let other = store.add_member("Li Lei", UnixMillis(2)).unwrap();
            assert_eq!((member.member_id.as_str(), other.member_id.as_str()), ("M00000001", "M00000002"));
            assert!(store.move_points(&entry(&member.member_id, "L1-A", 120, PointsReason::Sale)).unwrap());
            assert!(!store.move_points(&entry(&member.member_id, "L1-A", 120, PointsReason::Sale)).unwrap(), "twice");
            let refund = PointsReason::Refund { out_refund_no: "R1".into() };
            assert!(store.move_points(&entry(&member.member_id, "L1-A", -20, refund.clone())).unwrap());
            assert!(!store.move_points(&entry(&member.member_id, "L1-A", -20, refund)).unwrap());
            assert!(store.move_points(&entry(&other.member_id, "L1-B", 5, PointsReason::Sale)).unwrap());
            let sale = SaleId::parse("L1-C").unwrap();
            store.attach_member(&sale, &member.member_id).unwrap();
            store.commit_blocking().unwrap();
            (member.member_id, store.member_key())
        };
        let store = Store::open(dir.path()).unwrap();
        assert_eq!(store.points_balance(&member).unwrap(), 100);
        assert_eq!(store.points_page(&member, None, 10).unwrap().len(), 2);
        let first = store.points_page(&member, None, 1).unwrap();
        let rest = store.points_page(&member, Some(&first[0].0), 10).unwrap();
        assert_eq!(rest.len(), 1, "paged after the first");
        assert_eq!(store.member_of_sale(&SaleId::parse("L1-C").unwrap()).unwrap(), Some(member.clone()));
        assert_eq!(store.member(&member).unwrap().unwrap().name, "Wang Fang");
        assert_eq!(store.member_key(), key, "the signing key is the folder's, kept");
        assert_eq!(store.add_member("Han Meimei", UnixMillis(3)).unwrap().member_id.as_str(), "M00000003");
    }
}
