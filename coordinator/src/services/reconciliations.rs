//! Reconciling a business day against a provider's bill: the bill downloaded and read whole, the ledger's lines of the day, every difference kept.

use std::collections::HashSet;

use checkout_storage::{
    BusinessDay, ChargeRecord, ChargeStatus, OutTradeNo, Provider, ReconciliationRecord, RefundStatus, Store,
    UnixMillis,
};

use crate::{
    error::CoordinatorError,
    providers::PaymentProvider,
    reconcile::{self, Bill, Difference, DifferenceKind, LedgerLine, LineKind, OrderState, Reconciliation},
};

/// What a stored reconciliation keeps besides its differences: both sides' totals and how many
/// differences of each kind.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct Summary {
    /// The run, its `differences` left out (they are kept one by one).
    pub found: Reconciliation,
    pub by_kind: std::collections::BTreeMap<DifferenceKind, u64>,
}

/// Downloads `provider`'s bill of `day`, reads it whole (a bill that cannot be read is refused with its
/// line and reason, and nothing is stored), matches it line by line against the ledger, and keeps the
/// result. A day not over yet (UTC+8) is refused.
pub async fn reconcile_day(
    store: &Store,
    client: &dyn PaymentProvider,
    provider: Provider,
    day: BusinessDay,
    run_by: &str,
) -> Result<(ReconciliationRecord, Reconciliation), CoordinatorError> {
    if day >= BusinessDay::of(UnixMillis::now()) {
        return Err(CoordinatorError::Refused {
            reason: "DAY_NOT_OVER",
            message: format!("{day} is not over yet (China Standard Time): its bill comes the next day"),
        });
    }
    if store.closed_day(day)?.is_some() {
        return Err(CoordinatorError::Refused {
            reason: "DAY_CLOSED",
            message: format!("{day} is closed: its reconciliations are kept (ListReconciliations)"),
        });
    }
    let date = day.to_string();
    let bytes = client
        .download_bill(provider, &date)
        .await
        .map_err(|e| CoordinatorError::ProviderUnavailable(format!("{provider}'s bill of {date}: {e}")))?;
    let bill = match bytes {
        None => Bill { provider, day: Some(date.clone()), lines: Vec::new(), totals: Default::default() },
        Some(bytes) => {
            let parsed = match provider {
                Provider::Alipay => reconcile::parse_alipay_bill(&bytes),
                Provider::WeChatPay | Provider::UnionPay => reconcile::parse_wechat_bill(&bytes),
            };
            let mut bill = parsed.map_err(|e| CoordinatorError::Refused {
                reason: "BILL_UNREADABLE",
                message: format!("{provider}'s bill of {date} cannot be read ({e}); nothing was stored"),
            })?;
            bill.provider = provider;
            bill
        }
    };
    if let Some(stated) = &bill.day
        && stated != &date
        && !bill.lines.is_empty()
    {
        return Err(CoordinatorError::Refused {
            reason: "BILL_UNREADABLE",
            message: format!("{provider} sent the bill of {stated} for {date}; nothing was stored"),
        });
    }
    let lines = ledger_lines(store, provider, day)?;
    let found = reconcile::reconcile(&lines, &bill)
        .map_err(|e| CoordinatorError::Internal(format!("reconciling {date}: {e}")))?;
    let mut by_kind = std::collections::BTreeMap::new();
    for difference in &found.differences {
        *by_kind.entry(difference.kind).or_insert(0) += 1;
    }
    let summary = Summary { found: Reconciliation { differences: Vec::new(), ..found.clone() }, by_kind };
    let summary_json = serde_json::to_string(&summary)
        .map_err(|e| CoordinatorError::Internal(format!("encoding a reconciliation: {e}")))?;
    let differences = found
        .differences
        .iter()
        .map(|d| {
            serde_json::to_string(d).map_err(|e| CoordinatorError::Internal(format!("encoding a difference: {e}")))
        })
        .collect::<Result<Vec<String>, _>>()?;
    let record = ReconciliationRecord {
        id: 0,
        day,
        provider,
        run_at: UnixMillis::now(),
        run_by: run_by.to_owned(),
        differences: 0,
        summary: summary_json,
    };
    let record = store.put_reconciliation(record, differences)?;
    store.commit().await?;
    tracing::info!(%day, %provider, differences = record.differences, matched = found.matched, "day reconciled");
    Ok((record, found))
}

/// A stored reconciliation's totals.
pub fn summary_of(record: &ReconciliationRecord) -> Result<Summary, CoordinatorError> {
    serde_json::from_str(&record.summary)
        .map_err(|e| CoordinatorError::Internal(format!("reconciliation {} cannot be read: {e}", record.id)))
}

/// A stored difference.
pub fn difference_of(json: &str) -> Result<Difference, CoordinatorError> {
    serde_json::from_str(json).map_err(|e| CoordinatorError::Internal(format!("a difference cannot be read: {e}")))
}

/// The ledger's lines of `day` for `provider`'s bill: every charge made that day, with where it stood at
/// the day's end; every refund asked that day; every paid charge whose reversal was confirmed that day.
pub fn ledger_lines(store: &Store, provider: Provider, day: BusinessDay) -> Result<Vec<LedgerLine>, CoordinatorError> {
    let (start, end) = (day.start(), day.end());
    let mut lines = Vec::new();
    let refunds = store.refunds_asked_between(start, end)?;
    // A charge of the day can only have been refunded that day by its end.
    let refunded: HashSet<OutTradeNo> = refunds
        .iter()
        .filter(|refund| refund.status == RefundStatus::Accepted)
        .map(|refund| refund.out_trade_no.clone())
        .collect();
    store.each_charge_made_between(start, end, |charge| {
        if charge.provider == provider {
            let state = state_at(&charge, end, refunded.contains(&charge.out_trade_no));
            lines.push(LedgerLine {
                provider,
                kind: LineKind::Charge,
                out_trade_no: charge.out_trade_no.to_string(),
                out_refund_no: None,
                amount: charge.amount.minor_units,
                state,
                time: charge.created_at,
            });
        }
        Ok(())
    })?;
    for refund in refunds {
        if refund.status != RefundStatus::Accepted {
            continue;
        }
        let Some(charge) = store.charge(&refund.out_trade_no)? else { continue };
        if charge.provider != provider {
            continue;
        }
        lines.push(LedgerLine {
            provider,
            kind: LineKind::Refund,
            out_trade_no: refund.out_trade_no.to_string(),
            out_refund_no: Some(refund.out_refund_no.clone()),
            amount: refund.amount.minor_units,
            state: OrderState::Refunded,
            time: refund.created_at,
        });
    }
    for charge in store.charges_reversed_between(start, end)? {
        if charge.provider != provider || !money_went_back(&charge) {
            continue;
        }
        lines.push(LedgerLine {
            provider,
            kind: LineKind::Reversal,
            out_trade_no: charge.out_trade_no.to_string(),
            out_refund_no: None,
            amount: charge.amount.minor_units,
            state: OrderState::Reversed,
            time: charge.settled_at.unwrap_or(charge.created_at),
        });
    }
    Ok(lines)
}

/// Whether a reversed charge had been paid: its reversal returned money.
fn money_went_back(charge: &ChargeRecord) -> bool {
    charge.events.iter().any(|event| event.what.contains("money returned"))
}

/// Where `charge` stood at `end` (the end of its day) as the ledger knows it; `refunded`: a refund of it
/// was accepted that day.
fn state_at(charge: &ChargeRecord, end: UnixMillis, refunded: bool) -> OrderState {
    match charge.status {
        ChargeStatus::Paid if refunded => OrderState::Refunded,
        ChargeStatus::Paid => OrderState::Paid,
        ChargeStatus::Reversed if money_went_back(charge) => {
            if charge.settled_at.is_some_and(|at| at < end) {
                OrderState::Reversed
            } else {
                OrderState::Paid
            }
        }
        ChargeStatus::Reversed | ChargeStatus::NewCodeNeeded | ChargeStatus::Failed => OrderState::Failed,
        ChargeStatus::Pending | ChargeStatus::Unknown | ChargeStatus::Reversing => OrderState::Pending,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::providers::{
        MicropayRequest, ProviderAnswer, ProviderError, ProviderFuture, QueryAnswer, RefundAnswer, RefundRequest,
        ReverseAnswer,
    };
    use checkout_storage::OutTradeNo;

    /// A provider whose bill is whatever the test says (`None`: no bill for the day).
    struct Billing(Option<Vec<u8>>);

    impl PaymentProvider for Billing {
        fn micropay(&self, _: MicropayRequest) -> ProviderFuture<'_, Result<ProviderAnswer, ProviderError>> {
            unimplemented!("only bills here")
        }
        fn query(&self, _: Provider, _: &OutTradeNo) -> ProviderFuture<'_, Result<QueryAnswer, ProviderError>> {
            unimplemented!("only bills here")
        }
        fn reverse(&self, _: Provider, _: &OutTradeNo) -> ProviderFuture<'_, Result<ReverseAnswer, ProviderError>> {
            unimplemented!("only bills here")
        }
        fn refund(&self, _: RefundRequest) -> ProviderFuture<'_, Result<RefundAnswer, ProviderError>> {
            unimplemented!("only bills here")
        }
        fn download_bill(&self, _: Provider, _: &str) -> ProviderFuture<'_, Result<Option<Vec<u8>>, ProviderError>> {
            let bill = self.0.clone();
            Box::pin(async move { Ok(bill) })
        }
    }

    #[tokio::test]
    async fn a_bill_that_cannot_be_read_is_refused_with_its_line_and_nothing_is_kept() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let yesterday = BusinessDay(BusinessDay::of(UnixMillis::now()).0 - 1);
        let header = "Trade time,appid,mch_id,sub_mch_id,device_info,transaction_id,out_trade_no,openid,Trade type,\
                      Trade state,Bank,Currency,Settlement amount,Coupon amount,refund_id,out_refund_no,Refund amount,\
                      Coupon refund amount,Refund type,Refund status,Body,Attach,Fee,Fee rate\n";
        let garbled = format!(
            "{header}`2026-11-25 10:00:00,`wx,`1,`0,`L1,`T1,`S001-L1-A-1,`o,`MICROPAY,`SUCCESS,`OTHERS,`CNY,`12.3.4,`0.00,`0,`0,`0.00,`0.00,`,`,`x,`,`0.07,`0.60%\n"
        );
        let err =
            reconcile_day(&store, &Billing(Some(garbled.into_bytes())), Provider::WeChatPay, yesterday, "manager ann")
                .await
                .unwrap_err();
        match &err {
            CoordinatorError::Refused { reason: "BILL_UNREADABLE", message } => {
                assert!(message.contains("line 2"), "{message}")
            }
            other => panic!("{other:?}"),
        }
        assert!(store.reconciliations_page(None, 10).unwrap().is_empty(), "nothing stored");
        // The same day without a bill (nothing sold) is kept, clean.
        let (kept, found) = reconcile_day(&store, &Billing(None), Provider::Alipay, yesterday, "manager ann")
            .await
            .map_err(|e| e.to_string())
            .unwrap();
        assert!(found.is_clean() && found.matched == 0);
        assert_eq!(store.reconciliations_page(None, 10).unwrap(), [kept]);
    }
}
