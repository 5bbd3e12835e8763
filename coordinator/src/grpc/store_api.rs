//! `StoreService`: the managers' reads (a page at a time, off the async runtime) and actions (audited).

use std::sync::atomic::Ordering;

use checkout_proto::v1 as pb;
use checkout_storage::{ChargeRecord, ChargeStatus, LaneId, OutTradeNo, SaleId, ShiftRecord, UnixMillis};
use tonic::{Request, Response, Status};

use super::{
    Result, StoreApi, caller_of,
    convert::*,
    lane_id_of,
    lanes_live::{self, lane_to_pb},
    paging::{finish_page, page_request},
    plain_text, reconciliations_api,
    request_ids::{Repeat, answer_once},
    respond,
};
use crate::{
    Coordinator,
    auth::Caller,
    engine::refunds::RefundOrder,
    error::{CoordinatorError, field},
    services::shifts::shift_report,
};

impl StoreApi {
    fn lane_filter(lane_id: &str) -> Result<Option<LaneId>> {
        if lane_id.is_empty() { Ok(None) } else { lane_id_of(lane_id).map(Some) }
    }

    fn list_lanes(c: &Coordinator, request: pb::ListLanesRequest) -> Result<pb::ListLanesResponse> {
        let page = page_request("lanes", "", request.page_size, &request.page_token)?;
        let found = c.store.lanes_page(page.after.as_deref(), page.size + 1)?;
        let (lanes, next_page_token) = finish_page("lanes", "", &page, found);
        let lanes = lanes.into_iter().map(|lane| lane_to_pb(c, lane)).collect::<Result<Vec<_>>>()?;
        Ok(pb::ListLanesResponse { lanes, next_page_token })
    }

    fn totals(c: &Coordinator, request: pb::GetTotalsRequest) -> Result<pb::GetTotalsResponse> {
        let currency = c.currency;
        let lane_id = Self::lane_filter(&request.lane_id)?;
        let provider = provider_from_pb("provider", request.provider)?;
        let shift_id = shift_id_of(&request.shift_id)?;
        let start = millis_from_pb("start_time", request.start_time)?;
        let end = millis_from_pb("end_time", request.end_time)?;
        let filtered = lane_id.is_some() || provider.is_some() || start.is_some() || end.is_some();
        if let Some(shift_id) = shift_id {
            if filtered {
                return Err(CoordinatorError::invalid("shift_id", "a shift's totals take no other filter"));
            }
            let shift =
                c.store.shift(&shift_id)?.ok_or_else(|| CoordinatorError::NotFound(format!("no shift {shift_id}")))?;
            let takings = c.store.shift_tally(&shift.shift_id);
            let report = shift_report(&c.store, currency, shift)?;
            return Ok(pb::GetTotalsResponse {
                points_granted: report.points_granted,
                points_taken_back: report.points_taken_back,
                discounts_given: Some(money_to_pb(report.discounts_given)),
                store_id: c.store_id.to_string(),
                sales: takings.sales,
                items: takings.items,
                sales_total: Some(money_to_pb(takings.sales_total.of(currency))),
                payments_paid: takings.sales,
                payments_declined: takings.payments_declined,
                paid_total: Some(money_to_pb(takings.sales_total.of(currency))),
                payments_unsettled: c.store.unsettled_count() as u64,
                filtered: true,
                ..Default::default()
            });
        }
        // Points and discounts in the same filters: a sale names its lane, its payment the provider.
        let lane_prefix = lane_id.as_ref().map(|lane| format!("{lane}-"));
        let admitted = |sale_id: &checkout_storage::SaleId, at: UnixMillis, out_trade_no: &OutTradeNo| {
            lane_prefix.as_ref().is_none_or(|prefix| sale_id.as_str().starts_with(prefix.as_str()))
                && start.is_none_or(|start| at.0 >= start.0)
                && end.is_none_or(|end| at.0 < end.0)
                && provider.is_none_or(|provider| {
                    c.store.charge(out_trade_no).ok().flatten().is_some_and(|charge| charge.provider == provider)
                })
        };
        let (points_granted, points_taken_back) =
            c.store.points_moved(|entry| admitted(&entry.sale_id, entry.at, &entry.out_trade_no))?;
        let discounts: i64 = c
            .store
            .sale_discounts()?
            .iter()
            .filter(|d| admitted(&d.sale_id, d.at, &d.out_trade_no))
            .map(|d| d.amount.minor_units)
            .sum();
        let (store, per_lane) = if filtered {
            let filter = checkout_storage::TallyFilter { lane_id, provider };
            (c.store.tally_between(&filter, start, end)?, Default::default())
        } else {
            c.store.totals()
        };
        Ok(pb::GetTotalsResponse {
            store_id: c.store_id.to_string(),
            sales: store.sales,
            items: store.items,
            sales_total: Some(money_to_pb(store.sales_total.of(currency))),
            payments_paid: store.payments_paid,
            payments_declined: store.payments_declined,
            paid_total: Some(money_to_pb(store.paid_total.of(currency))),
            lanes: per_lane.iter().map(|(lane_id, t)| tally_to_pb(lane_id, t, currency)).collect(),
            payments_unsettled: c.store.unsettled_count() as u64,
            refunds: store.refunds,
            refunded_total: Some(money_to_pb(store.refunded_total.of(currency))),
            filtered,
            points_granted,
            points_taken_back,
            discounts_given: Some(money_to_pb(checkout_storage::Money::new(discounts, currency))),
        })
    }

    fn list_sales(c: &Coordinator, request: pb::ListSalesRequest) -> Result<pb::ListSalesResponse> {
        let lane = Self::lane_filter(&request.lane_id)?;
        let filter = format!("{}/{}", request.lane_id, request.archive_month);
        let page = page_request("sales", &filter, request.page_size, &request.page_token)?;
        let found = if request.archive_month.is_empty() {
            c.store.sales_page(lane.as_ref(), page.after.as_deref(), page.size + 1)?
        } else {
            c.store.archived_sales_page(&request.archive_month, lane.as_ref(), page.after.as_deref(), page.size + 1)?
        };
        let (sales, next_page_token) = finish_page("sales", &filter, &page, found);
        Ok(pb::ListSalesResponse { sales: sales.into_iter().map(sale_to_pb).collect(), next_page_token })
    }

    fn list_payments(c: &Coordinator, request: pb::ListPaymentsRequest) -> Result<pb::ListPaymentsResponse> {
        let lane = Self::lane_filter(&request.lane_id)?;
        // Every out_trade_no starts with the store and the sale, whose id starts with its lane.
        let prefix = lane.map(|lane| format!("{}-{lane}-", c.store_id)).unwrap_or_default();
        let filter = format!("{}/{}", request.lane_id, request.archive_month);
        let page = page_request("payments", &filter, request.page_size, &request.page_token)?;
        let found = if request.archive_month.is_empty() {
            c.store.charges_page(&prefix, page.after.as_deref(), page.size + 1)?
        } else {
            c.store.archived_charges_page(&request.archive_month, &prefix, page.after.as_deref(), page.size + 1)?
        };
        let (charges, next_page_token) = finish_page("payments", &filter, &page, found);
        Ok(pb::ListPaymentsResponse { payments: charges.into_iter().map(charge_to_pb).collect(), next_page_token })
    }

    fn list_products(c: &Coordinator, request: pb::ListProductsRequest) -> Result<pb::ListProductsResponse> {
        let page = page_request("products", "", request.page_size, &request.page_token)?;
        let found = c.store.products_page(page.after.as_deref(), page.size + 1)?;
        let (products, next_page_token) = finish_page("products", "", &page, found);
        Ok(pb::ListProductsResponse { products: products.into_iter().map(product_to_pb).collect(), next_page_token })
    }

    fn list_unsettled(c: &Coordinator, request: pb::ListUnsettledRequest) -> Result<pb::ListUnsettledResponse> {
        let now = UnixMillis::now();
        let next_try = UnixMillis(c.next_resolve_at.load(Ordering::SeqCst).max(now.0));
        let page = page_request("unsettled", "", request.page_size, &request.page_token)?;
        // The key: the charge's creation (8 bytes, big-endian) and its out_trade_no.
        let after = match page.after.as_deref() {
            None => None,
            Some(key) if key.len() > 8 => {
                let created = i64::from_be_bytes(key[..8].try_into().unwrap_or_default());
                let out_trade_no = std::str::from_utf8(&key[8..]).ok().and_then(|t| OutTradeNo::parse(t).ok());
                let out_trade_no = out_trade_no.ok_or_else(|| CoordinatorError::invalid("page_token", "garbled"))?;
                Some((UnixMillis(created), out_trade_no))
            }
            Some(_) => return Err(CoordinatorError::invalid("page_token", "garbled")),
        };
        let charges = c.store.unsettled_page(after.as_ref(), page.size + 1)?;
        let keyed = charges
            .into_iter()
            .map(|charge| {
                let mut key = charge.created_at.0.to_be_bytes().to_vec();
                key.extend_from_slice(charge.out_trade_no.as_str().as_bytes());
                (key, charge)
            })
            .collect();
        let (charges, next_page_token) = finish_page("unsettled", "", &page, keyed);
        let payments = charges
            .into_iter()
            .map(|charge| pb::UnsettledPayment {
                age_seconds: (now.0.saturating_sub(charge.created_at.0).max(0) / 1000) as u64,
                owed: match charge.status {
                    ChargeStatus::Reversing => "reversal owed".to_owned(),
                    _ => "outcome unknown: query, then reverse if unpaid".to_owned(),
                },
                last_event: charge.events.last().map(|e| e.what.clone()).unwrap_or_default(),
                next_try: Some(timestamp(next_try)),
                payment: Some(charge_to_pb(charge)),
            })
            .collect();
        Ok(pb::ListUnsettledResponse { payments, next_page_token })
    }

    fn get_sale(c: &Coordinator, request: pb::GetSaleRequest) -> Result<pb::Sale> {
        let sale_id = match request.key {
            Some(pb::get_sale_request::Key::SaleId(sale_id)) => SaleId::parse(&sale_id).map_err(field("sale_id"))?,
            Some(pb::get_sale_request::Key::OutTradeNo(out_trade_no)) => {
                let out_trade_no = OutTradeNo::parse(&out_trade_no).map_err(field("out_trade_no"))?;
                let charge = c
                    .store
                    .charge(&out_trade_no)?
                    .ok_or_else(|| CoordinatorError::NotFound(format!("no payment {out_trade_no}")))?;
                charge.sale_id
            }
            None => return Err(CoordinatorError::invalid("key", "give sale_id or out_trade_no")),
        };
        let sale = c.store.sale(&sale_id)?.ok_or_else(|| {
            CoordinatorError::NotFound(format!("no finished sale {sale_id} (a sale is recorded once it is paid)"))
        })?;
        Ok(sale_to_pb(sale))
    }

    fn get_payment(c: &Coordinator, request: pb::GetPaymentRequest) -> Result<pb::GetPaymentResponse> {
        let charge = match request.key {
            Some(pb::get_payment_request::Key::OutTradeNo(out_trade_no)) => {
                let out_trade_no = OutTradeNo::parse(&out_trade_no).map_err(field("out_trade_no"))?;
                c.store
                    .charge(&out_trade_no)?
                    .ok_or_else(|| CoordinatorError::NotFound(format!("no payment {out_trade_no}")))?
            }
            Some(pb::get_payment_request::Key::SaleId(sale_id)) => {
                let sale_id = SaleId::parse(&sale_id).map_err(field("sale_id"))?;
                // Every attempt of a sale: its out_trade_no is the store, the sale and the attempt.
                let attempts = c.store.charges_with_prefix(&format!("{}-{sale_id}-", c.store_id))?;
                let paid = attempts.iter().find(|charge| charge.status == ChargeStatus::Paid).cloned();
                paid.or_else(|| attempts.into_iter().max_by_key(|charge: &ChargeRecord| charge.attempt.get()))
                    .ok_or_else(|| CoordinatorError::NotFound(format!("no payment for sale {sale_id}")))?
            }
            None => return Err(CoordinatorError::invalid("key", "give out_trade_no or sale_id")),
        };
        let refunds = c.store.refunds_of(&charge.out_trade_no)?;
        let refunded = refunds
            .iter()
            .filter(|refund| refund.status == checkout_storage::RefundStatus::Accepted)
            .try_fold(checkout_storage::Money::zero(charge.amount.currency), |sum, refund| {
                sum.checked_add(refund.amount)
            })?;
        let events = charge
            .events
            .iter()
            .map(|e| pb::PaymentEvent { at: Some(timestamp(e.at)), what: e.what.clone() })
            .collect();
        Ok(pb::GetPaymentResponse {
            refunds: refunds.into_iter().map(refund_to_pb).collect(),
            refunded_total: Some(money_to_pb(refunded)),
            events,
            payment: Some(charge_to_pb(charge)),
        })
    }

    fn list_refunds(c: &Coordinator, request: pb::ListRefundsRequest) -> Result<pb::ListRefundsResponse> {
        if !request.archive_month.is_empty() && !request.out_trade_no.is_empty() {
            return Err(CoordinatorError::invalid(
                "archive_month",
                "a payment's refunds are found wherever they are: give one of the two",
            ));
        }
        let filter = &format!("{}/{}", request.out_trade_no, request.archive_month);
        let page = page_request("refunds", filter, request.page_size, &request.page_token)?;
        let found = if !request.archive_month.is_empty() {
            c.store.archived_refunds_page(&request.archive_month, page.after.as_deref(), page.size + 1)?
        } else if request.out_trade_no.is_empty() {
            c.store.refunds_page(page.after.as_deref(), page.size + 1)?
        } else {
            let out_trade_no = OutTradeNo::parse(&request.out_trade_no).map_err(field("out_trade_no"))?;
            c.store.refunds_of_page(&out_trade_no, page.after.as_deref(), page.size + 1)?
        };
        let (refunds, next_page_token) = finish_page("refunds", filter, &page, found);
        Ok(pb::ListRefundsResponse { refunds: refunds.into_iter().map(refund_to_pb).collect(), next_page_token })
    }

    fn list_shifts(c: &Coordinator, request: pb::ListShiftsRequest) -> Result<pb::ListShiftsResponse> {
        let lane = Self::lane_filter(&request.lane_id)?;
        let filter = format!("{}/{}", request.lane_id, request.open_only);
        let page = page_request("shifts", &filter, request.page_size, &request.page_token)?;
        let found = if request.open_only {
            // Open shifts are few (one a lane at most, as a rule): from the ledger's summary.
            let mut open: Vec<(Vec<u8>, ShiftRecord)> = c
                .store
                .open_shifts(lane.as_ref())?
                .into_iter()
                .map(|shift| (shift.shift_id.as_str().as_bytes().to_vec(), shift))
                .filter(|(key, _)| page.after.as_ref().is_none_or(|after| key > after))
                .collect();
            open.sort_by(|a, b| a.0.cmp(&b.0));
            open.truncate(page.size + 1);
            open
        } else {
            c.store.shifts_page(lane.as_ref(), page.after.as_deref(), page.size + 1)?
        };
        let (shifts, next_page_token) = finish_page("shifts", &filter, &page, found);
        let shifts = shifts
            .into_iter()
            .map(|shift| shift_report(&c.store, c.currency, shift).map(shift_report_to_pb))
            .collect::<Result<Vec<_>>>()?;
        Ok(pb::ListShiftsResponse { shifts, next_page_token })
    }

    fn list_audit(c: &Coordinator, request: pb::ListAuditRequest) -> Result<pb::ListAuditResponse> {
        let page = page_request("audit", "", request.page_size, &request.page_token)?;
        let after = match page.after.as_deref() {
            None => None,
            Some(key) => Some(u64::from_be_bytes(
                key.try_into().map_err(|_| CoordinatorError::invalid("page_token", "garbled"))?,
            )),
        };
        let found = c.store.audit_page(after, page.size + 1)?;
        let keyed = found.into_iter().map(|(sequence, entry)| (sequence.to_be_bytes().to_vec(), (sequence, entry)));
        let (entries, next_page_token) = finish_page("audit", "", &page, keyed.collect());
        let entries = entries
            .into_iter()
            .map(|(sequence, entry)| pb::AuditEntry {
                sequence,
                at: Some(timestamp(entry.at)),
                caller: entry.caller,
                peer: entry.peer,
                method: entry.method,
                target: entry.target,
                outcome: entry.outcome,
                detail: entry.detail,
            })
            .collect();
        Ok(pb::ListAuditResponse { entries, next_page_token })
    }

    async fn resolve_now(&self, caller: &Caller, request: pb::ResolveNowRequest) -> Result<pb::ResolveNowResponse> {
        let method = ("ResolveNow", Repeat::FirstAnswer);
        answer_once(&self.0, caller, method, &request.request_id, &request, async {
            let left = self.0.payments.resolve_outstanding().await?;
            self.0.audit_action(caller, "StoreService/ResolveNow", "", &format!("{left} charges still unsettled"));
            self.0.store.commit().await?;
            Ok(pb::ResolveNowResponse { still_unsettled: left as u64 })
        })
        .await
    }

    async fn refund(&self, caller: &Caller, request: pb::RefundRequest) -> Result<pb::RefundResponse> {
        let out_trade_no = OutTradeNo::parse(&request.out_trade_no).map_err(field("out_trade_no"))?;
        let amount = money_from_pb("amount", request.amount.clone())?;
        plain_text("reason", &request.reason, 80)?;
        let method = ("Refund", Repeat::FirstAnswer);
        answer_once(&self.0, caller, method, &request.request_id, &request, async {
            let order = RefundOrder {
                out_trade_no,
                out_refund_no: request.out_refund_no.clone(),
                amount,
                reason: request.reason.clone(),
            };
            let (refund, refunded_total) = self.0.payments.refund(order).await?;
            let detail =
                format!("{} of {}: {:?} ({})", refund.amount, refund.out_trade_no, refund.status, refund.reason);
            self.0.audit_action(caller, "StoreService/Refund", &refund.out_refund_no, &detail);
            self.0.store.commit().await?;
            Ok(pb::RefundResponse {
                refund: Some(refund_to_pb(refund)),
                refunded_total: Some(money_to_pb(refunded_total)),
            })
        })
        .await
    }

    async fn reverse_payment(&self, caller: &Caller, request: pb::ReversePaymentRequest) -> Result<pb::Payment> {
        let out_trade_no = OutTradeNo::parse(&request.out_trade_no).map_err(field("out_trade_no"))?;
        plain_text("reason", &request.reason, 80)?;
        let method = ("ReversePayment", Repeat::FirstAnswer);
        answer_once(&self.0, caller, method, &request.request_id, &request, async {
            let why = format!("{} ({})", caller.principal, request.reason);
            let charge = self.0.payments.reverse_paid(&out_trade_no, &why).await?;
            let detail = format!("{} {}: {:?} ({})", charge.provider, charge.amount, charge.status, request.reason);
            self.0.audit_action(caller, "StoreService/ReversePayment", out_trade_no.as_str(), &detail);
            self.0.store.commit().await?;
            Ok(charge_to_pb(charge))
        })
        .await
    }

    async fn close_lane(&self, caller: &Caller, request: pb::CloseLaneRequest) -> Result<pb::Lane> {
        let method = ("CloseLane", Repeat::FirstAnswer);
        answer_once(&self.0, caller, method, &request.request_id, &request, async {
            lanes_live::set_closed(&self.0, caller, &request.lane_id, Some(&request.reason)).await
        })
        .await
    }

    async fn open_lane(&self, caller: &Caller, request: pb::OpenLaneRequest) -> Result<pb::Lane> {
        let method = ("OpenLane", Repeat::FirstAnswer);
        answer_once(&self.0, caller, method, &request.request_id, &request, async {
            lanes_live::set_closed(&self.0, caller, &request.lane_id, None).await
        })
        .await
    }

    async fn reconcile(&self, caller: &Caller, request: pb::ReconcileRequest) -> Result<pb::Reconciliation> {
        let method = ("Reconcile", Repeat::FirstAnswer);
        answer_once(&self.0, caller, method, &request.request_id, &request, async {
            reconciliations_api::reconcile(&self.0, caller, &request).await
        })
        .await
    }

    async fn close_day(&self, caller: &Caller, request: pb::CloseDayRequest) -> Result<pb::ClosedDay> {
        let method = ("CloseDay", Repeat::FirstAnswer);
        answer_once(&self.0, caller, method, &request.request_id, &request, async {
            reconciliations_api::close_day(&self.0, caller, &request).await
        })
        .await
    }

    async fn issue_lane_token(&self, caller: &Caller, request: pb::IssueLaneTokenRequest) -> Result<pb::LaneToken> {
        let lane_id = lane_id_of(&request.lane_id)?;
        let method = ("IssueLaneToken", Repeat::Refused("TOKEN_ALREADY_ISSUED"));
        answer_once(&self.0, caller, method, &request.request_id, &request, async {
            let token = self.0.issue_lane_token(&lane_id, caller).await?;
            Ok(pb::LaneToken { lane_id: lane_id.to_string(), token })
        })
        .await
    }

    async fn revoke_lane_token(
        &self,
        caller: &Caller,
        request: pb::RevokeLaneTokenRequest,
    ) -> Result<pb::RevokeLaneTokenResponse> {
        let lane_id = lane_id_of(&request.lane_id)?;
        let method = ("RevokeLaneToken", Repeat::FirstAnswer);
        answer_once(&self.0, caller, method, &request.request_id, &request, async {
            let revoked = self.0.revoke_lane_token(&lane_id, caller).await?;
            Ok(pb::RevokeLaneTokenResponse { revoked })
        })
        .await
    }

    /// Runs a read of the ledger on the blocking pool, a few at a time, so that readers never hold up
    /// the async runtime (health checks, charges) however many of them there are.
    async fn read<T: Send + 'static>(
        &self,
        read: impl FnOnce(&Coordinator) -> Result<T> + Send + 'static,
    ) -> Result<Response<T>, Status> {
        let coordinator = self.0.clone();
        let _turn = coordinator
            .readers
            .clone()
            .acquire_owned()
            .await
            .map_err(|_| Status::from(CoordinatorError::ShuttingDown))?;
        let answer = tokio::task::spawn_blocking(move || read(&coordinator))
            .await
            .map_err(|e| Status::from(CoordinatorError::Internal(format!("a read failed: {e}"))))?;
        respond(answer)
    }
}

#[tonic::async_trait]
impl pb::store_service_server::StoreService for StoreApi {
    async fn list_lanes(
        &self,
        request: Request<pb::ListLanesRequest>,
    ) -> Result<Response<pb::ListLanesResponse>, Status> {
        let request = request.into_inner();
        self.read(move |c| Self::list_lanes(c, request)).await
    }

    type WatchLanesStream = tokio_stream::wrappers::ReceiverStream<Result<pb::WatchLanesResponse, Status>>;

    async fn watch_lanes(&self, _: Request<pb::WatchLanesRequest>) -> Result<Response<Self::WatchLanesStream>, Status> {
        respond(lanes_live::watch(self.0.clone(), &self.1))
    }

    async fn close_lane(&self, request: Request<pb::CloseLaneRequest>) -> Result<Response<pb::Lane>, Status> {
        with_caller!(request, |caller, message| self.close_lane(&caller, message).await)
    }

    async fn open_lane(&self, request: Request<pb::OpenLaneRequest>) -> Result<Response<pb::Lane>, Status> {
        with_caller!(request, |caller, message| self.open_lane(&caller, message).await)
    }

    async fn get_totals(
        &self,
        request: Request<pb::GetTotalsRequest>,
    ) -> Result<Response<pb::GetTotalsResponse>, Status> {
        let request = request.into_inner();
        self.read(move |c| Self::totals(c, request)).await
    }

    async fn list_sales(
        &self,
        request: Request<pb::ListSalesRequest>,
    ) -> Result<Response<pb::ListSalesResponse>, Status> {
        let request = request.into_inner();
        self.read(move |c| Self::list_sales(c, request)).await
    }

    async fn list_payments(
        &self,
        request: Request<pb::ListPaymentsRequest>,
    ) -> Result<Response<pb::ListPaymentsResponse>, Status> {
        let request = request.into_inner();
        self.read(move |c| Self::list_payments(c, request)).await
    }

    async fn list_products(
        &self,
        request: Request<pb::ListProductsRequest>,
    ) -> Result<Response<pb::ListProductsResponse>, Status> {
        let request = request.into_inner();
        self.read(move |c| Self::list_products(c, request)).await
    }

    async fn list_unsettled(
        &self,
        request: Request<pb::ListUnsettledRequest>,
    ) -> Result<Response<pb::ListUnsettledResponse>, Status> {
        let request = request.into_inner();
        self.read(move |c| Self::list_unsettled(c, request)).await
    }

    async fn resolve_now(
        &self,
        request: Request<pb::ResolveNowRequest>,
    ) -> Result<Response<pb::ResolveNowResponse>, Status> {
        with_caller!(request, |caller, message| self.resolve_now(&caller, message).await)
    }

    async fn refund(&self, request: Request<pb::RefundRequest>) -> Result<Response<pb::RefundResponse>, Status> {
        with_caller!(request, |caller, message| self.refund(&caller, message).await)
    }

    async fn add_member(&self, request: Request<pb::AddMemberRequest>) -> Result<Response<pb::Member>, Status> {
        with_caller!(request, |caller, message| self.add_member(&caller, message).await)
    }

    async fn block_member(&self, request: Request<pb::BlockMemberRequest>) -> Result<Response<pb::Member>, Status> {
        with_caller!(request, |caller, message| self.block_member(&caller, message).await)
    }

    async fn create_promotion(
        &self,
        request: Request<pb::CreatePromotionRequest>,
    ) -> Result<Response<pb::Promotion>, Status> {
        with_caller!(request, |caller, message| self.create_promotion(&caller, message).await)
    }

    async fn end_promotion(
        &self,
        request: Request<pb::EndPromotionRequest>,
    ) -> Result<Response<pb::Promotion>, Status> {
        with_caller!(request, |caller, message| self.end_promotion(&caller, message).await)
    }

    async fn list_promotions(
        &self,
        request: Request<pb::ListPromotionsRequest>,
    ) -> Result<Response<pb::ListPromotionsResponse>, Status> {
        let request = request.into_inner();
        self.read(move |c| Self::list_promotions(c, request)).await
    }

    async fn issue_coupon(&self, request: Request<pb::IssueCouponRequest>) -> Result<Response<pb::Coupon>, Status> {
        with_caller!(request, |caller, message| self.issue_coupon(&caller, message).await)
    }

    async fn void_coupon(&self, request: Request<pb::VoidCouponRequest>) -> Result<Response<pb::Coupon>, Status> {
        with_caller!(request, |caller, message| self.void_coupon(&caller, message).await)
    }

    async fn list_coupons(
        &self,
        request: Request<pb::ListCouponsRequest>,
    ) -> Result<Response<pb::ListCouponsResponse>, Status> {
        let request = request.into_inner();
        self.read(move |c| Self::list_coupons(c, request)).await
    }

    async fn get_member(
        &self,
        request: Request<pb::GetMemberRequest>,
    ) -> Result<Response<pb::GetMemberResponse>, Status> {
        let request = request.into_inner();
        self.read(move |c| Self::get_member(c, request)).await
    }

    async fn get_sale(&self, request: Request<pb::GetSaleRequest>) -> Result<Response<pb::Sale>, Status> {
        let request = request.into_inner();
        self.read(move |c| Self::get_sale(c, request)).await
    }

    async fn get_payment(
        &self,
        request: Request<pb::GetPaymentRequest>,
    ) -> Result<Response<pb::GetPaymentResponse>, Status> {
        let request = request.into_inner();
        self.read(move |c| Self::get_payment(c, request)).await
    }

    async fn reverse_payment(
        &self,
        request: Request<pb::ReversePaymentRequest>,
    ) -> Result<Response<pb::Payment>, Status> {
        with_caller!(request, |caller, message| self.reverse_payment(&caller, message).await)
    }

    async fn list_refunds(
        &self,
        request: Request<pb::ListRefundsRequest>,
    ) -> Result<Response<pb::ListRefundsResponse>, Status> {
        let request = request.into_inner();
        self.read(move |c| Self::list_refunds(c, request)).await
    }

    async fn list_shifts(
        &self,
        request: Request<pb::ListShiftsRequest>,
    ) -> Result<Response<pb::ListShiftsResponse>, Status> {
        let request = request.into_inner();
        self.read(move |c| Self::list_shifts(c, request)).await
    }

    async fn issue_lane_token(
        &self,
        request: Request<pb::IssueLaneTokenRequest>,
    ) -> Result<Response<pb::LaneToken>, Status> {
        with_caller!(request, |caller, message| self.issue_lane_token(&caller, message).await)
    }

    async fn revoke_lane_token(
        &self,
        request: Request<pb::RevokeLaneTokenRequest>,
    ) -> Result<Response<pb::RevokeLaneTokenResponse>, Status> {
        with_caller!(request, |caller, message| self.revoke_lane_token(&caller, message).await)
    }

    async fn reconcile(&self, request: Request<pb::ReconcileRequest>) -> Result<Response<pb::Reconciliation>, Status> {
        with_caller!(request, |caller, message| self.reconcile(&caller, message).await)
    }

    async fn list_reconciliations(
        &self,
        request: Request<pb::ListReconciliationsRequest>,
    ) -> Result<Response<pb::ListReconciliationsResponse>, Status> {
        let request = request.into_inner();
        self.read(move |c| reconciliations_api::list(c, request)).await
    }

    async fn get_reconciliation(
        &self,
        request: Request<pb::GetReconciliationRequest>,
    ) -> Result<Response<pb::GetReconciliationResponse>, Status> {
        let request = request.into_inner();
        self.read(move |c| reconciliations_api::get(c, request)).await
    }

    async fn close_day(&self, request: Request<pb::CloseDayRequest>) -> Result<Response<pb::ClosedDay>, Status> {
        with_caller!(request, |caller, message| self.close_day(&caller, message).await)
    }

    async fn list_closed_days(
        &self,
        request: Request<pb::ListClosedDaysRequest>,
    ) -> Result<Response<pb::ListClosedDaysResponse>, Status> {
        let request = request.into_inner();
        self.read(move |c| reconciliations_api::list_closed_days(c, request)).await
    }

    async fn list_audit(
        &self,
        request: Request<pb::ListAuditRequest>,
    ) -> Result<Response<pb::ListAuditResponse>, Status> {
        let request = request.into_inner();
        self.read(move |c| Self::list_audit(c, request)).await
    }
}
