//! Domain types of the checkout and everything the store and its lanes keep in sled.
//!
//! This crate is the bottom of the dependency graph: it knows nothing of gRPC,
//! actors or providers. Preconditions live in the types: a [`PaymentCode`] is
//! a code of a known wallet and never prints in full, a [`ProductCode`] has a
//! valid check digit, [`Money`] is integer minor units with a currency.

mod archive;
mod catalog;
mod codes;
mod coupons;
mod days;
mod folder;
mod ids;
mod lane_store;
mod members;
mod money;
mod promotions;
mod records;
mod store;
mod summary;
mod wallets;

pub use archive::{ClosedDay, DayClosure, LaneProviderTally};
pub use catalog::sample_catalog;
pub use codes::{
    CodeFingerprint, MaskedCode, PaymentCode, PaymentCodeError, ProductCode, ProductCodeError, Provider, ScannedCode,
    Symbology, classify, gtin_check_digit, upc_e_to_upc_a,
};
pub use coupons::{
    COUPON_CODE_PREFIX, CouponCode, CouponCodeError, CouponDiscount, CouponId, CouponRecord, CouponState,
};
pub use days::BusinessDay;
pub use folder::{ARCHIVE_DIR, COMMITTED_FILE, CREDENTIALS_DIR, FORMAT_FILE, FORMAT_VERSION, LOCK_FILE};
pub use ids::{Attempt, CashierId, IdError, LaneId, OutTradeNo, SaleId, ShiftId, StoreId, UnixMillis};
pub use lane_store::{FinishedSale, LaneStore, OutboxItem, ShiftCount};
pub use members::{
    MEMBER_CODE_PREFIX, MemberCode, MemberCodeError, MemberId, MemberKey, MemberRecord, PointsEntry, PointsReason,
};
pub use money::{Currency, Money, MoneyError};
pub use promotions::{DiscountLine, PromotionId, PromotionKind, PromotionRecord, SaleDiscount, promotion_discounts};
pub use records::{
    AnsweredRequest, AuditRecord, ChargeEvent, ChargeRecord, ChargeStatus, LaneClosure, LaneRecord, LaneTokenRecord,
    OrderLine, Product, ReconciliationRecord, RefundRecord, RefundStatus, SaleLine, SaleRecord, SettlementGap,
    ShiftRecord, ShiftSettlement, basket_digest,
};
pub use store::{AUDIT_KEEP, REQUEST_KEEP_MILLIS, StorageError, Store};
pub use summary::{RefundTally, ShiftTally, Sums, Tally, TallyFilter};
pub use wallets::{CODE_LIFETIME_MILLIS, SimulatedCodeError, SimulatedWallet, check_simulated_code};
