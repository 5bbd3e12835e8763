//! `Reconcile`, `ListReconciliations`, `GetReconciliation`: a day against a provider's bill, over the wire.

use checkout_proto::v1 as pb;
use checkout_storage::{BusinessDay, Currency, Money, ReconciliationRecord};

use super::{
    Result,
    convert::{money_to_pb, provider_from_pb, provider_to_pb, timestamp},
    paging::{finish_page, page_request},
};
use crate::{
    Coordinator,
    auth::Caller,
    error::{CoordinatorError, field},
    reconcile::{DayTotals, Difference, DifferenceKind, LineKind, OrderState, Side},
    services::reconciliations::{difference_of, reconcile_day, summary_of},
};

pub(super) async fn reconcile(
    c: &Coordinator,
    caller: &Caller,
    request: &pb::ReconcileRequest,
) -> Result<pb::Reconciliation> {
    let day = BusinessDay::parse(&request.date).map_err(field("date"))?;
    let provider = provider_from_pb("provider", request.provider)?
        .ok_or_else(|| CoordinatorError::invalid("provider", "name the provider whose bill to reconcile"))?;
    let client = c.payments.provider(provider)?;
    let (record, _) = reconcile_day(&c.store, client.as_ref(), provider, day, &caller.principal.to_string()).await?;
    let detail = format!("{provider} {day}: {} differences", record.differences);
    c.audit_action(caller, "StoreService/Reconcile", &record.id.to_string(), &detail);
    c.store.commit().await?;
    reconciliation_to_pb(c.currency, &record)
}

pub(super) fn list(
    c: &Coordinator,
    request: pb::ListReconciliationsRequest,
) -> Result<pb::ListReconciliationsResponse> {
    let day =
        if request.date.is_empty() { None } else { Some(BusinessDay::parse(&request.date).map_err(field("date"))?) };
    let page = page_request("reconciliations", &request.date, request.page_size, &request.page_token)?;
    let mut after = page.after.as_deref().map(id_of_key).transpose()?;
    // Filtered by day: read on until the page is full or the records end.
    let mut found = Vec::new();
    loop {
        let batch = c.store.reconciliations_page(after, 200)?;
        let Some(last) = batch.last() else { break };
        after = Some(last.id);
        found.extend(batch.into_iter().filter(|r| day.is_none_or(|day| r.day == day)));
        if found.len() > page.size {
            break;
        }
    }
    found.truncate(page.size + 1);
    let keyed = found.into_iter().map(|r| (r.id.to_be_bytes().to_vec(), r)).collect();
    let (records, next_page_token) = finish_page("reconciliations", &request.date, &page, keyed);
    let reconciliations = records.iter().map(|r| reconciliation_to_pb(c.currency, r)).collect::<Result<Vec<_>>>()?;
    Ok(pb::ListReconciliationsResponse { reconciliations, next_page_token })
}

pub(super) fn get(c: &Coordinator, request: pb::GetReconciliationRequest) -> Result<pb::GetReconciliationResponse> {
    let record = c
        .store
        .reconciliation(request.id)?
        .ok_or_else(|| CoordinatorError::NotFound(format!("no reconciliation {}", request.id)))?;
    let filter = request.id.to_string();
    let page = page_request("differences", &filter, request.page_size, &request.page_token)?;
    let after = page.after.as_deref().map(id_of_key).transpose()?;
    let found = c.store.reconciliation_differences(record.id, after, page.size + 1)?;
    let keyed = found.into_iter().map(|(number, json)| (number.to_be_bytes().to_vec(), (number, json))).collect();
    let (differences, next_page_token) = finish_page("differences", &filter, &page, keyed);
    let differences = differences
        .into_iter()
        .map(|(number, json)| difference_of(&json).map(|d| difference_to_pb(c.currency, number, d)))
        .collect::<Result<Vec<_>>>()?;
    Ok(pb::GetReconciliationResponse {
        reconciliation: Some(reconciliation_to_pb(c.currency, &record)?),
        differences,
        next_page_token,
    })
}

fn id_of_key(key: &[u8]) -> Result<u64> {
    key.try_into().map(u64::from_be_bytes).map_err(|_| CoordinatorError::invalid("page_token", "garbled"))
}

fn fen(currency: Currency, minor_units: i64) -> Option<pb::Money> {
    Some(money_to_pb(Money::new(minor_units, currency)))
}

fn totals_to_pb(currency: Currency, t: &DayTotals) -> pb::DayTotals {
    pb::DayTotals {
        charges: t.charges,
        charged: fen(currency, t.charged),
        refunds: t.refunds,
        refunded: fen(currency, t.refunded),
        reversals: t.reversals,
        reversed: fen(currency, t.reversed),
        fees: fen(currency, t.fees),
        net: fen(currency, t.net),
    }
}

fn kind_name(kind: DifferenceKind) -> &'static str {
    match kind {
        DifferenceKind::MissingInLedger => "KIND_MISSING_IN_LEDGER",
        DifferenceKind::MissingInBill => "KIND_MISSING_IN_BILL",
        DifferenceKind::AmountMismatch => "KIND_AMOUNT_MISMATCH",
        DifferenceKind::StateMismatch => "KIND_STATE_MISMATCH",
        DifferenceKind::Duplicate => "KIND_DUPLICATE",
    }
}

pub(super) fn reconciliation_to_pb(currency: Currency, record: &ReconciliationRecord) -> Result<pb::Reconciliation> {
    let summary = summary_of(record)?;
    let by_kind = summary.by_kind.iter().map(|(kind, count)| (kind_name(*kind).to_owned(), *count)).collect();
    Ok(pb::Reconciliation {
        id: record.id,
        date: record.day.to_string(),
        provider: provider_to_pb(record.provider).into(),
        run_at: Some(timestamp(record.run_at)),
        run_by: record.run_by.clone(),
        clean: record.differences == 0,
        differences: record.differences,
        matched: summary.found.matched,
        ledger: Some(totals_to_pb(currency, &summary.found.ledger)),
        bill: Some(totals_to_pb(currency, &summary.found.bill)),
        differences_by_kind: by_kind,
    })
}

fn state_to_pb(state: Option<OrderState>) -> pb::OrderState {
    match state {
        None => pb::OrderState::Unspecified,
        Some(OrderState::Paid) => pb::OrderState::Paid,
        Some(OrderState::Refunded) => pb::OrderState::Refunded,
        Some(OrderState::Reversed) => pb::OrderState::Reversed,
        Some(OrderState::Pending) => pb::OrderState::Pending,
        Some(OrderState::Failed) => pb::OrderState::Failed,
    }
}

fn difference_to_pb(currency: Currency, number: u64, d: Difference) -> pb::Difference {
    use pb::difference::Kind;
    pb::Difference {
        number,
        kind: match d.kind {
            DifferenceKind::MissingInLedger => Kind::MissingInLedger,
            DifferenceKind::MissingInBill => Kind::MissingInBill,
            DifferenceKind::AmountMismatch => Kind::AmountMismatch,
            DifferenceKind::StateMismatch => Kind::StateMismatch,
            DifferenceKind::Duplicate => Kind::Duplicate,
        }
        .into(),
        line_kind: match d.line_kind {
            LineKind::Charge => pb::BillLineKind::Charge,
            LineKind::Refund => pb::BillLineKind::Refund,
            LineKind::Reversal => pb::BillLineKind::Reversal,
        }
        .into(),
        out_trade_no: d.out_trade_no,
        out_refund_no: d.out_refund_no.unwrap_or_default(),
        ledger_amount: d.ledger_amount.and_then(|a| fen(currency, a)),
        bill_amount: d.bill_amount.and_then(|a| fen(currency, a)),
        ledger_state: state_to_pb(d.ledger_state).into(),
        bill_state: state_to_pb(d.bill_state).into(),
        duplicated_in_bill: d.side == Some(Side::Bill),
    }
}

pub(super) async fn close_day(
    c: &Coordinator,
    caller: &Caller,
    request: &pb::CloseDayRequest,
) -> Result<pb::ClosedDay> {
    let day = BusinessDay::parse(&request.date).map_err(field("date"))?;
    super::plain_text("note", &request.note, 200)?;
    let providers: Vec<_> = c.payments.providers().collect();
    let by = caller.principal.to_string();
    let closed =
        crate::services::days::close_day(&c.store, &providers, day, request.accept_differences, &request.note, &by)
            .await?;
    let detail = format!(
        "{} charges, {} sales, {} refunds archived; {}",
        closed.charges, closed.sales, closed.refunds, closed.closure.note
    );
    c.audit_action(caller, "StoreService/CloseDay", &day.to_string(), &detail);
    c.store.commit().await?;
    Ok(closed_day_to_pb(c.currency, &closed))
}

pub(super) fn list_closed_days(
    c: &Coordinator,
    request: pb::ListClosedDaysRequest,
) -> Result<pb::ListClosedDaysResponse> {
    let page = page_request("closed days", "", request.page_size, &request.page_token)?;
    let after = page.after.clone();
    let days: Vec<(Vec<u8>, checkout_storage::ClosedDay)> = c
        .store
        .closed_days()?
        .into_iter()
        .map(|day| (day.day.key().to_vec(), day))
        .filter(|(key, _)| after.as_ref().is_none_or(|after| key > after))
        .take(page.size + 1)
        .collect();
    let (days, next_page_token) = finish_page("closed days", "", &page, days);
    Ok(pb::ListClosedDaysResponse {
        days: days.iter().map(|d| closed_day_to_pb(c.currency, d)).collect(),
        next_page_token,
    })
}

fn closed_day_to_pb(currency: Currency, closed: &checkout_storage::ClosedDay) -> pb::ClosedDay {
    let tally = closed.tally();
    pb::ClosedDay {
        date: closed.day.to_string(),
        closed_at: Some(timestamp(closed.closure.closed_at)),
        closed_by: closed.closure.closed_by.clone(),
        note: closed.closure.note.clone(),
        charges: closed.charges,
        sales: closed.sales,
        refunds: closed.refunds,
        sales_total: Some(money_to_pb(tally.sales_total.of(currency))),
        paid_total: Some(money_to_pb(tally.paid_total.of(currency))),
        refunded_total: Some(money_to_pb(tally.refunded_total.of(currency))),
        archive_month: closed.day.month(),
    }
}
