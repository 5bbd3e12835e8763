//! The store's services beside the payment engine: sales reported by lanes, cashiers' shifts, lanes' live
//! state and tokens, and the cap on unpaid sales.

pub mod coupons;
pub mod days;
pub mod lane_tokens;
pub mod live;
pub mod members;
pub mod open_sales;
pub mod reconciliations;
pub mod sales;
pub mod shifts;
