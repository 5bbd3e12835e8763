//! Ids the lane makes for its sales and its cashiers' shifts: the lane's id and the time in base 36.

use checkout_storage::{LaneId, SaleId, ShiftId, UnixMillis};

/// Makes ids unique to one lane, strictly increasing even when two are asked for in the same millisecond.
pub(crate) struct LaneIds {
    lane_id: LaneId,
    last_millis: i64,
}

impl LaneIds {
    /// Ids of `lane_id`.
    pub fn new(lane_id: LaneId) -> LaneIds {
        LaneIds { lane_id, last_millis: 0 }
    }

    /// The id of a new sale.
    pub fn sale_id(&mut self) -> SaleId {
        let id = self.next();
        // A lane id has at most 6 characters and the millis at most 9 base-36 digits: always valid.
        SaleId::parse(&id).unwrap_or_else(|_| unreachable!("sale id {id} out of shape"))
    }

    /// The id of a new shift.
    pub fn shift_id(&mut self) -> ShiftId {
        let id = self.next();
        ShiftId::parse(&id).unwrap_or_else(|_| unreachable!("shift id {id} out of shape"))
    }

    /// The lane and the time in base 36, later than the last one made.
    fn next(&mut self) -> String {
        let millis = UnixMillis::now().0.max(self.last_millis + 1);
        self.last_millis = millis;
        let mut n = millis as u64;
        let mut digits = Vec::new();
        while n > 0 {
            digits.push(b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"[(n % 36) as usize]);
            n /= 36;
        }
        digits.reverse();
        format!("{}-{}", self.lane_id, String::from_utf8_lossy(&digits))
    }
}
