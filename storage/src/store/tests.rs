//! The ledger's tests: reopening, refusing what it cannot read, codes, group commit, the summary, the audit log.

use super::*;

mod reopening {
    use super::*;
    use crate::{Currency, Money, sample_catalog};

    #[test]
    fn records_survive_reopening() {
        let dir = tempfile::tempdir().unwrap();
        {
            let store = Store::open(dir.path()).unwrap();
            assert_eq!(store.seed_catalog_if_empty(&sample_catalog()).unwrap(), sample_catalog().len());
            store.commit_blocking().unwrap();
        }
        let store = Store::open(dir.path()).unwrap();
        assert_eq!(store.products().unwrap().len(), sample_catalog().len());
        assert_eq!(store.seed_catalog_if_empty(&sample_catalog()).unwrap(), 0);
        let first = &sample_catalog()[0];
        assert_eq!(store.product(&first.gtin).unwrap().as_ref(), Some(first));
    }

    #[test]
    fn another_format_version_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        drop(Store::open(dir.path()).unwrap());
        std::fs::write(dir.path().join(FORMAT_FILE), "checkout-ledger 99\n").unwrap();
        let Err(err) = Store::open(dir.path()) else { panic!("opened a version 99 folder") };
        assert!(err.to_string().contains("checkout-ledger 99"), "{err}");

        let other = tempfile::tempdir().unwrap();
        std::fs::write(other.path().join("notes.txt"), "not a ledger").unwrap();
        let Err(err) = Store::open(other.path()) else { panic!("opened a folder of something else") };
        assert!(matches!(err, StorageError::NotCheckoutData { .. }), "{err}");
        assert_eq!(std::fs::read_dir(other.path()).unwrap().count(), 1, "nothing was added");
    }

    #[test]
    fn corrupt_records_are_reported_not_misread() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        store.products.insert(b"4006381333931", b"\x01\xff\xff".as_slice()).unwrap();
        let err = store.products().unwrap_err();
        assert!(matches!(err, StorageError::Corrupt { tree: "products", .. }), "{err}");
        let _ = Money::zero(Currency::CNY);
        store.commit_blocking().unwrap();
        drop(store);
        let before = crate::folder::files_below(dir.path());
        let Err(err) = Store::open(dir.path()) else { panic!("opened a ledger holding an unreadable record") };
        assert!(matches!(err, StorageError::Damaged { .. }), "{err}");
        assert!(err.to_string().contains("4006381333931"), "the error names the record: {err}");
        assert_eq!(crate::folder::files_below(dir.path()), before, "a refused folder is left as it was");
    }
}

mod code_tests {
    use super::*;
    use crate::{Attempt, Provider, SimulatedWallet, StoreId, UnixMillis};

    fn order(sale: &str) -> OutTradeNo {
        OutTradeNo::derive(&StoreId::parse("S1").unwrap(), &SaleId::parse(sale).unwrap(), Attempt::new(1).unwrap())
    }

    #[test]
    fn a_code_is_claimed_by_one_order_and_recognised_without_being_kept() {
        let (dir, other) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        let code = SimulatedWallet::new(b"k", Provider::Alipay, 1).issue_code(UnixMillis::now());
        let fresh = SimulatedWallet::new(b"k", Provider::Alipay, 2).issue_code(UnixMillis::now());
        let key_of_first;
        {
            let store = Store::open(dir.path()).unwrap();
            let fingerprint = store.fingerprint(&code);
            key_of_first = fingerprint;
            assert_ne!(fingerprint, store.fingerprint(&fresh));
            assert_eq!(store.claim_code(fingerprint, &order("L1-A")).unwrap(), order("L1-A"));
            assert_eq!(store.claim_code(fingerprint, &order("L1-A")).unwrap(), order("L1-A"), "the same order again");
            assert_eq!(store.claim_code(fingerprint, &order("L1-B")).unwrap(), order("L1-A"), "another order");
            store.commit_blocking().unwrap();
        }
        // The key stays with the folder, and another folder has its own.
        let store = Store::open(dir.path()).unwrap();
        assert_eq!(store.fingerprint(&code), key_of_first);
        assert_eq!(store.claim_code(key_of_first, &order("L1-C")).unwrap(), order("L1-A"));
        assert_ne!(Store::open(other.path()).unwrap().fingerprint(&code), key_of_first);
        let shown = format!("{key_of_first:?}");
        assert!(!shown.contains(code.expose_digits()) && shown.len() < 12, "{shown}");
    }
}

mod group_commit_tests {
    use super::*;
    use crate::sample_catalog;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_commits_all_complete_and_survive_reopening() {
        let dir = tempfile::tempdir().unwrap();
        {
            let store = Store::open(dir.path()).unwrap();
            let tasks: Vec<_> = sample_catalog()
                .into_iter()
                .map(|product| {
                    let store = store.clone();
                    tokio::spawn(async move {
                        store.put_product(&product).unwrap();
                        store.commit().await
                    })
                })
                .collect();
            for task in tasks {
                task.await.unwrap().unwrap();
            }
        }
        // Reopening right away works: the commit thread let go of the database with the last Store.
        let store = Store::open(dir.path()).unwrap();
        assert_eq!(store.products().unwrap().len(), sample_catalog().len());
    }
}

mod summary_tests {
    use super::*;
    use crate::{
        Attempt, CashierId, ChargeStatus, Currency, MaskedCode, Money, Provider, RefundStatus, SaleLine, StoreId,
        UnixMillis, basket_digest, sample_catalog,
    };

    fn charge(sale: &str, status: ChargeStatus, shift: Option<&str>) -> ChargeRecord {
        let product = &sample_catalog()[0];
        let sale_id = SaleId::parse(sale).unwrap();
        ChargeRecord {
            out_trade_no: OutTradeNo::derive(&StoreId::parse("S1").unwrap(), &sale_id, Attempt::new(1).unwrap()),
            lane_id: LaneId::parse(sale.split('-').next().unwrap()).unwrap(),
            sale_id,
            attempt: Attempt::new(1).unwrap(),
            provider: Provider::Alipay,
            masked_code: MaskedCode::of("2800000000000000"),
            code_fingerprint: CodeFingerprint([3; 16]),
            amount: Money::new(200, Currency::CNY),
            status,
            provider_code: String::new(),
            message: String::new(),
            provider_transaction_id: String::new(),
            created_at: UnixMillis(10),
            settled_at: None,
            lines: vec![SaleLine {
                gtin: product.gtin.clone(),
                quantity: 2,
                unit_price: Money::new(100, Currency::CNY),
            }],
            basket_sha256: basket_digest(&[crate::OrderLine::catalog(product.gtin.clone(), 2)]),
            shift_id: shift.map(|s| ShiftId::parse(s).unwrap()),
            sale_started_at: UnixMillis(5),
            superseded_by: None,
            events: Vec::new(),
        }
    }

    fn sale_of(charge: &ChargeRecord) -> SaleRecord {
        SaleRecord { started_at: UnixMillis(5), ..SaleRecord::paid_by(charge, UnixMillis(20)) }
    }

    #[test]
    fn the_summary_follows_every_write_and_is_the_same_after_reopening() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let shift = ShiftRecord {
            shift_id: ShiftId::parse("L1-S1").unwrap(),
            lane_id: LaneId::parse("L1").unwrap(),
            cashier: CashierId::parse("ann").unwrap(),
            opened_at: UnixMillis(1),
            closed_at: None,
            closed_how: String::new(),
        };
        store.put_shift(&shift).unwrap();
        // A charge goes pending -> unknown -> paid, with its sale; another is declined; a third stays unknown.
        let mut paid = charge("L1-A", ChargeStatus::Pending, Some("L1-S1"));
        store.insert_charge_if_absent(&paid).unwrap();
        assert_eq!(store.unsettled_count(), 1);
        paid.status = ChargeStatus::Unknown;
        store.put_charge(&paid).unwrap();
        paid.status = ChargeStatus::Paid;
        store.put_charge(&paid).unwrap();
        assert!(store.insert_sale_if_absent(&sale_of(&paid)).unwrap());
        assert!(!store.insert_sale_if_absent(&sale_of(&paid)).unwrap(), "counted once");
        store.put_charge(&charge("L1-B", ChargeStatus::NewCodeNeeded, Some("L1-S1"))).unwrap();
        store.put_charge(&charge("L2-C", ChargeStatus::Unknown, None)).unwrap();
        let refund = RefundRecord {
            out_refund_no: "RF-1".into(),
            out_trade_no: paid.out_trade_no.clone(),
            lane_id: paid.lane_id.clone(),
            amount: Money::new(50, Currency::CNY),
            reason: String::new(),
            status: RefundStatus::Pending,
            provider_code: String::new(),
            message: String::new(),
            refund_id: String::new(),
            created_at: UnixMillis(30),
            settled_at: None,
        };
        store.insert_refund_if_absent(&refund).unwrap();
        store.put_refund(&RefundRecord { status: RefundStatus::Accepted, ..refund }).unwrap();

        let check = |store: &Store| {
            let (all, lanes) = store.totals();
            assert_eq!((all.sales, all.items, all.payments_paid, all.payments_declined), (1, 2, 1, 1));
            assert_eq!(all.paid_total.of(Currency::CNY).minor_units, 200);
            assert_eq!(lanes[&LaneId::parse("L1").unwrap()].sales, 1);
            assert_eq!(lanes[&LaneId::parse("L2").unwrap()].payments_paid, 0);
            let unsettled = store.outstanding_charges().unwrap();
            assert_eq!(unsettled.iter().map(|c| c.sale_id.as_str()).collect::<Vec<_>>(), ["L2-C"]);
            let tally = store.shift_tally(&ShiftId::parse("L1-S1").unwrap());
            assert_eq!((tally.sales, tally.items, tally.payments_declined), (1, 2, 1));
            assert_eq!(tally.by_provider[&Provider::Alipay].0, 1);
            let refunds = store.refund_tally();
            assert_eq!((refunds.refunds, refunds.refunded_total.of(Currency::CNY).minor_units), (1, 50));
            assert_eq!(store.refunds_of(&paid.out_trade_no).unwrap().len(), 1);
            assert_eq!(store.open_shifts(None).unwrap().len(), 1);
        };
        check(&store);
        store.put_shift(&ShiftRecord { closed_at: Some(UnixMillis(99)), ..shift }).unwrap();
        assert!(store.open_shifts(Some(&LaneId::parse("L1").unwrap())).unwrap().is_empty());
        store
            .put_shift(&ShiftRecord {
                closed_at: None,
                ..store.shift(&ShiftId::parse("L1-S1").unwrap()).unwrap().unwrap()
            })
            .unwrap();
        store.commit_blocking().unwrap();
        drop(store);
        check(&Store::open(dir.path()).unwrap());
    }

    #[test]
    fn pages_follow_the_key_order_within_a_prefix() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        for sale in ["L1-A", "L1-B", "L1-C", "L10-A", "L2-A"] {
            let charge = charge(sale, ChargeStatus::Paid, None);
            store.put_charge(&charge).unwrap();
            store.insert_sale_if_absent(&sale_of(&charge)).unwrap();
        }
        let l1 = LaneId::parse("L1").unwrap();
        let first = store.sales_page(Some(&l1), None, 2).unwrap();
        assert_eq!(first.iter().map(|(_, s)| s.sale_id.as_str()).collect::<Vec<_>>(), ["L1-A", "L1-B"]);
        let rest = store.sales_page(Some(&l1), Some(&first[1].0), 2).unwrap();
        assert_eq!(
            rest.iter().map(|(_, s)| s.sale_id.as_str()).collect::<Vec<_>>(),
            ["L1-C"],
            "L10's sales are not L1's"
        );
        assert_eq!(store.sales_page(None, None, 10).unwrap().len(), 5);
        assert_eq!(store.charges_page("S1-L2-", None, 10).unwrap().len(), 1);
    }
}

mod audit_tests {
    use super::*;
    use crate::UnixMillis;

    #[test]
    fn the_audit_log_keeps_its_newest_entries_in_order_across_reopening() {
        let dir = tempfile::tempdir().unwrap();
        let entry = |n: u32| AuditRecord {
            at: UnixMillis(i64::from(n)),
            caller: "anonymous".into(),
            peer: "10.0.0.9:5000".into(),
            method: "checkout.v1.StoreService/Refund".into(),
            target: String::new(),
            outcome: "UNAUTHENTICATED".into(),
            detail: format!("refusal {n}"),
        };
        {
            let store = Store::open(dir.path()).unwrap();
            store.keep_audit_entries(3);
            for n in 0..5 {
                store.append_audit(&entry(n)).unwrap();
            }
            store.commit_blocking().unwrap();
        }
        let store = Store::open(dir.path()).unwrap();
        store.keep_audit_entries(3);
        let kept = store.audit_page(None, 10).unwrap();
        assert_eq!(
            kept.iter().map(|(_, e)| e.detail.as_str()).collect::<Vec<_>>(),
            ["refusal 2", "refusal 3", "refusal 4"]
        );
        store.append_audit(&entry(5)).unwrap();
        let page = store.audit_page(Some(kept[0].0), 10).unwrap();
        assert_eq!(
            page.iter().map(|(_, e)| e.detail.as_str()).collect::<Vec<_>>(),
            ["refusal 3", "refusal 4", "refusal 5"]
        );
        assert!(page[0].0 > kept[0].0, "sequence numbers only grow");
    }
}
