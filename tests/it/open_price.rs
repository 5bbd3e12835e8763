//! Open-price items through the store: a lane sends the price the cashier typed, the store charges it, keeps it
//! in the ledger and holds the lane's report of the sale to it; a lane that lies about typed prices is refused
//! and nothing is charged.

use crate::common;

use std::sync::Arc;

use checkout_coordinator::sim::SimulatedProvider;
use checkout_proto::v1 as pb;
use checkout_storage::{Product, Provider, SimulatedWallet, UnixMillis, sample_catalog};
use common::{WALLET_SEED, start_coordinator};
use tonic::Code;

const LANE: &str = "L4";
const STARTING_BALANCE: i64 = 100_000;

fn cny(minor_units: i64) -> Option<pb::Money> {
    Some(pb::Money { minor_units, currency: "CNY".into() })
}

fn bakery() -> Product {
    sample_catalog().into_iter().find(Product::is_open_price).expect("the sample catalog has an open-price item")
}

fn milk() -> Product {
    sample_catalog().remove(0)
}

fn line(product: &Product, quantity: u32, typed_fen: Option<i64>) -> pb::SaleLine {
    pb::SaleLine { gtin: product.gtin.to_string(), quantity, unit_price: typed_fen.and_then(cny) }
}

/// Two milks, and two bakery items at 12.50 and 3.20 yuan.
fn basket() -> Vec<pb::SaleLine> {
    vec![line(&milk(), 2, None), line(&bakery(), 1, Some(1250)), line(&bakery(), 1, Some(320))]
}

fn basket_total() -> i64 {
    milk().price.minor_units * 2 + 1250 + 320
}

fn pay(sale_id: &str, wallet: u16, lines: Vec<pb::SaleLine>, amount: i64) -> pb::PayRequest {
    let code = SimulatedWallet::new(WALLET_SEED, Provider::Alipay, wallet).issue_code(UnixMillis::now());
    pb::PayRequest {
        lane_id: LANE.into(),
        sale_id: sale_id.into(),
        attempt: 1,
        payment_code: code.expose_digits().into(),
        lines,
        amount: cny(amount),
        ..Default::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn typed_prices_are_charged_recorded_and_held_to() {
    let data = tempfile::tempdir().unwrap();
    let sim = Arc::new(SimulatedProvider::new(WALLET_SEED, STARTING_BALANCE));
    let coordinator = start_coordinator(data.path(), &sim).await;
    let mut lane = common::lane_client(&coordinator.url, LANE).await;
    let registered = lane
        .register_lane(pb::RegisterLaneRequest { lane_id: LANE.into(), description: "open prices".into() })
        .await
        .expect("RegisterLane")
        .into_inner();
    let listed = registered.products.iter().find(|p| p.gtin == bakery().gtin.as_str()).expect("bakery in catalog");
    assert_eq!(listed.price.as_ref().map(|p| p.minor_units), Some(0), "an open-price item is priced at zero");

    // One catalog line and two bakery lines: charged exactly their sum.
    let paid = lane.pay(pay("L4-BAKERY1", 31, basket(), basket_total())).await.expect("Pay").into_inner();
    assert_eq!(paid.outcome(), pb::PaymentOutcome::Paid, "{paid:?}");
    assert_eq!(paid.amount.as_ref().map(|a| a.minor_units), Some(basket_total()));
    assert_eq!(sim.balance(Provider::Alipay, 31), STARTING_BALANCE - basket_total());

    // The ledger keeps each line at the price it was sold at.
    let mut manager = common::manager_client(&coordinator.url).await;
    let by_id = pb::GetSaleRequest { key: Some(pb::get_sale_request::Key::SaleId("L4-BAKERY1".into())) };
    let sale = manager.get_sale(by_id).await.expect("GetSale").into_inner();
    let lines: Vec<_> = sale
        .lines
        .iter()
        .map(|l| (l.gtin.as_str(), l.quantity, l.unit_price.as_ref().map(|p| p.minor_units)))
        .collect();
    let (milk_gtin, bakery_gtin) = (milk().gtin.to_string(), bakery().gtin.to_string());
    assert_eq!(
        lines,
        vec![
            (milk_gtin.as_str(), 2, Some(milk().price.minor_units)),
            (bakery_gtin.as_str(), 1, Some(1250)),
            (bakery_gtin.as_str(), 1, Some(320)),
        ]
    );
    assert_eq!((sale.items, sale.total.as_ref().map(|t| t.minor_units)), (4, Some(basket_total())));

    // The lane's report of the sale: the same basket is accepted, lines in any order...
    let finish = |lines: Vec<pb::SaleLine>| pb::FinishSaleRequest {
        lane_id: LANE.into(),
        sale_id: "L4-BAKERY1".into(),
        lines,
        total: cny(basket_total()),
        out_trade_no: paid.out_trade_no.clone(),
        ..Default::default()
    };
    let mut reordered = basket();
    reordered.reverse();
    for lines in [basket(), reordered] {
        let answer = lane.finish_sale(finish(lines)).await.expect("FinishSale").into_inner();
        assert!(!answer.newly_recorded, "recorded when it was paid");
    }
    // ...one with another typed price is not, even for the same total.
    let mut other_prices = basket();
    other_prices[1].unit_price = cny(1251);
    other_prices[2].unit_price = cny(319);
    let status = lane.finish_sale(finish(other_prices)).await.expect_err("another typed price");
    assert_eq!(status.code(), Code::FailedPrecondition, "{status:?}");
    assert!(status.message().contains("another basket"), "{}", status.message());
    // Nor one without the typed prices, nor one with another total.
    let untyped = vec![line(&milk(), 2, None), line(&bakery(), 2, None)];
    let status = lane.finish_sale(finish(untyped)).await.expect_err("no typed prices");
    assert_eq!(status.code(), Code::FailedPrecondition, "{status:?}");
    let mut more = finish(basket());
    more.total = cny(basket_total() + 1);
    assert_eq!(lane.finish_sale(more).await.expect_err("another total").code(), Code::FailedPrecondition);
    // A typed price the store would never have taken is refused before the ledger is looked at.
    let mut over_cap = basket();
    over_cap[1].unit_price = cny(100_001);
    assert_eq!(lane.finish_sale(finish(over_cap)).await.expect_err("over the cap").code(), Code::InvalidArgument);
    assert_eq!(
        manager
            .get_sale(pb::GetSaleRequest { key: Some(pb::get_sale_request::Key::SaleId("L4-BAKERY1".into())) })
            .await
            .unwrap()
            .into_inner(),
        sale,
        "the ledger is unchanged"
    );
    coordinator.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lane_that_lies_about_typed_prices_is_refused_and_nothing_is_charged() {
    let data = tempfile::tempdir().unwrap();
    let sim = Arc::new(SimulatedProvider::new(WALLET_SEED, STARTING_BALANCE));
    let coordinator = start_coordinator(data.path(), &sim).await;
    let mut lane = common::lane_client(&coordinator.url, LANE).await;
    lane.register_lane(pb::RegisterLaneRequest { lane_id: LANE.into(), description: String::new() })
        .await
        .expect("RegisterLane");
    let milk_fen = milk().price.minor_units;
    let cap = 100_000; // the default cap: 1000 yuan

    let usd = pb::SaleLine {
        unit_price: Some(pb::Money { minor_units: 1250, currency: "USD".into() }),
        ..line(&bakery(), 1, None)
    };
    let lies: Vec<(&str, Vec<pb::SaleLine>, i64, &str)> = vec![
        ("over the cap", vec![line(&bakery(), 1, Some(cap + 1))], cap + 1, "lines[0].unit_price"),
        ("zero", vec![line(&milk(), 1, None), line(&bakery(), 1, Some(0))], milk_fen, "lines[1].unit_price"),
        (
            "negative",
            vec![line(&milk(), 1, None), line(&bakery(), 1, Some(-500))],
            milk_fen - 500,
            "lines[1].unit_price",
        ),
        ("another currency", vec![usd], 1250, "lines[0].unit_price.currency"),
        ("a typed price on milk", vec![line(&milk(), 1, Some(1))], 1, "lines[0].unit_price"),
        (
            "no typed price on bakery",
            vec![line(&milk(), 1, None), line(&bakery(), 1, None)],
            milk_fen,
            "lines[1].unit_price",
        ),
    ];
    for (n, (lie, lines, amount, field)) in lies.into_iter().enumerate() {
        let request = pay(&format!("L4-LIE{n}"), 40, lines, amount);
        let status = lane.pay(request).await.expect_err(lie);
        assert_eq!(status.code(), Code::InvalidArgument, "{lie}: {status:?}");
        assert!(status.message().starts_with(field), "{lie}: {}", status.message());
    }
    let status = lane.pay(pay("L4-LIE9", 40, vec![line(&milk(), 1, Some(1))], 1)).await.unwrap_err();
    assert!(status.message().contains("is not an open-price item"), "{}", status.message());
    assert!(sim.orders().is_empty(), "no provider was asked");
    assert_eq!(sim.balance(Provider::Alipay, 40), STARTING_BALANCE, "the wallet is untouched");
    let mut manager = common::manager_client(&coordinator.url).await;
    assert!(common::all_payments(&mut manager, LANE).await.is_empty(), "no charge recorded");

    // At the cap exactly, the typed price is taken.
    let paid = lane.pay(pay("L4-CAKE", 41, vec![line(&bakery(), 1, Some(cap))], cap)).await.unwrap().into_inner();
    assert_eq!(paid.outcome(), pb::PaymentOutcome::Paid, "{paid:?}");
    assert_eq!(sim.balance(Provider::Alipay, 41), STARTING_BALANCE - cap);
    coordinator.stop().await;
}
