//! The lane's screens in a real headless Chromium: what the cashier and the customer see while a customer
//! is served, the cashier's keys (remove a line, open price, confirm the amount, cancel, pause), a declined
//! code and the next one paying, and what the customer display must never hold.

use std::{sync::Arc, time::Duration};

use checkout_coordinator::sim::{SimOptions, SimulatedProvider};
use checkout_lanes::{
    FrameSource, LaneConfig, hand_held_scanner,
    messages::FrameInput,
    screen::{Lang, ScreenConfig, ScreenListener},
};
use checkout_storage::{LaneId, Provider, SimulatedWallet, Symbology, UnixMillis, sample_catalog};

use crate::common::{
    WALLET_SEED, all_payments,
    browser::{self, Browser},
    lane_credentials, manager_client, start_coordinator,
};

const F8: &str = "\u{E038}";
const F9: &str = "\u{E039}";
const F10: &str = "\u{E03A}";
const WAIT: Duration = Duration::from_secs(10);

/// The cashier's basket lines' names, in order.
const CASHIER_NAMES: &str = "return [...document.querySelectorAll('#lines tr .name')].map(n => n.textContent)";

fn names(browser: &Browser) -> Vec<String> {
    let value = browser.eval(CASHIER_NAMES).expect("names");
    serde_json::from_value(value).expect("list of names")
}

/// Sizes the window so that the page itself gets `width` x `height` (the window's frame takes the rest).
fn viewport(browser: &Browser, width: u32, height: u32) {
    browser.set_window_size(width, height).expect("window size");
    let frame = browser
        .eval("return [window.outerWidth - window.innerWidth, window.outerHeight - window.innerHeight]")
        .expect("frame");
    let (dw, dh) = (frame[0].as_u64().unwrap_or(0) as u32, frame[1].as_u64().unwrap_or(0) as u32);
    browser.set_window_size(width + dw, height + dh).expect("window size");
}

fn wait(browser: &Browser, what: &str, predicate: &str) {
    let predicate = format!("return (() => {{ {predicate} }})()");
    browser.wait_for(what, &predicate, WAIT).unwrap_or_else(|e| panic!("{e}"));
}

/// Waits until the page shows exactly `expected` lines, in order, and `to_pay`.
fn wait_for_basket(browser: &Browser, page: &str, expected: &[&str], to_pay: &str) {
    let names = serde_json::to_string(expected).expect("json");
    let predicate = format!(
        "const n = [...document.querySelectorAll('#lines tr .name')].map(n => n.textContent); \
         return JSON.stringify(n) === JSON.stringify({names}) && document.getElementById('to-pay').textContent === '{to_pay}'"
    );
    wait(browser, &format!("{page}: basket {expected:?} to pay {to_pay}"), &predicate);
}

/// Where the screenshots go: `docs/screens` when UPDATE_SCREENSHOTS is set (for the README), else a temporary
/// folder (they are taken and checked either way).
fn screenshot(browser: &Browser, name: &str, keep: &std::path::Path) {
    let path = if std::env::var_os("UPDATE_SCREENSHOTS").is_some() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/screens");
        std::fs::create_dir_all(&dir).expect("docs/screens");
        dir.join(name)
    } else {
        keep.join(name)
    };
    browser.save_screenshot(&path).expect("screenshot");
    let png = std::fs::read(&path).expect("read screenshot");
    assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n", "{name} is a PNG");
    let width = u32::from_be_bytes([png[16], png[17], png[18], png[19]]);
    assert_eq!(width, 1024, "{name} at 1024 pixels wide");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cashier_and_customer_see_the_sale_and_only_what_is_theirs() {
    let dir = tempfile::tempdir().expect("tempdir");
    // Charges above 70 yuan need the customer's password, which takes them 1.2 s.
    let options = SimOptions {
        password_above: Some(7_000),
        customer_delay: Duration::from_millis(1_200),
        ..SimOptions::default()
    };
    let sim = Arc::new(SimulatedProvider::with_options(WALLET_SEED, 100_000, options));
    let coordinator = start_coordinator(&dir.path().join("store"), &sim).await;

    let (trigger, scanner) = hand_held_scanner();
    let mut screen = ScreenConfig::new(ScreenListener::bind("127.0.0.1:0").expect("bind")).expect("screen");
    screen.lang = Lang::En;
    // Charges above 50 yuan wait for the cashier to check the amount.
    screen.confirm_above = Some(5_000);
    let (cashier_url, customer_url) = (screen.cashier_url().expect("url"), screen.customer_url().expect("url"));
    let mut config =
        LaneConfig::new(LaneId::parse("L1").unwrap(), coordinator.url.clone(), FrameSource::HandHeld(scanner));
    config.credentials = lane_credentials("L1");
    config.screen = Some(screen);
    config.heartbeat_every = Duration::from_millis(200);
    let lane = tokio::spawn(crate::common::run_lane(config));

    let catalog = sample_catalog();
    let product = |n: usize| catalog[n].clone();
    let (milk, eggs, rice) = (product(0), product(1), product(2));
    let scan = |text: String, symbology: Symbology| {
        let trigger = trigger.clone();
        async move { trigger.pull(FrameInput::Decoded(vec![(text, symbology)])).await.expect("lane takes the scan") }
    };

    let shots = tempfile::tempdir().expect("tempdir");
    let cashier_url_again = cashier_url.clone();
    let cashier = tokio::task::spawn_blocking(move || Browser::start().expect("chromium")).await.expect("thread");
    let customer = tokio::task::spawn_blocking(move || Browser::start().expect("chromium")).await.expect("thread");
    // The pages come up once the lane has registered.
    let cashier = tokio::task::spawn_blocking(move || {
        for _ in 0..100 {
            if cashier.open(&cashier_url).is_ok()
                && cashier.wait_for("cashier page", "return document.body.dataset.seq > 0", WAIT).is_ok()
            {
                break;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        wait(&cashier, "cashier signed on", "return document.getElementById('cashier').textContent === 'cashier-L1'");
        cashier
    })
    .await
    .expect("thread");
    viewport(&cashier, 1024, 768);
    customer.open(&customer_url).expect("customer page");
    viewport(&customer, 1024, 768);
    wait(&customer, "customer page", "return document.body.dataset.seq > 0");

    // A customer's items appear on both pages, in the order scanned.
    for p in [&milk, &eggs, &rice] {
        scan(p.gtin.to_string(), Symbology::Ean13).await;
    }
    let all_three = [milk.name.as_str(), eggs.name.as_str(), rice.name.as_str()];
    wait_for_basket(&cashier, "cashier", &all_three, "¥78.60");
    wait_for_basket(&customer, "customer", &all_three, "¥78.60");
    assert_eq!(names(&cashier), all_three);

    // The cashier takes the eggs out (the second line's ✕): both pages show the new total.
    cashier.click("#lines tr[data-line='1'] button.remove").expect("remove eggs");
    let two = [milk.name.as_str(), rice.name.as_str()];
    wait_for_basket(&cashier, "cashier after removing a line", &two, "¥62.80");
    wait_for_basket(&customer, "customer after removing a line", &two, "¥62.80");

    // An open-price item: typed, shown back, and added only by the second key press.
    cashier.type_into("#entry", "12.50").expect("type the price");
    cashier.press_keys(browser::F3).expect("F3");
    wait(
        &cashier,
        "open price shown back",
        "const o = document.getElementById('open-price'); return !o.hidden && o.textContent.includes('¥12.50')",
    );
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(names(&cashier), two, "not in the basket before the confirming key press");
    wait_for_basket(&customer, "customer before the confirming key", &two, "¥62.80");
    cashier.press_keys(browser::ENTER).expect("Enter");
    let with_cake = [milk.name.as_str(), rice.name.as_str(), "Bakery counter (open price)"];
    wait_for_basket(&cashier, "cashier with the open-price item", &with_cake, "¥75.30");
    wait_for_basket(&customer, "customer with the open-price item", &with_cake, "¥75.30");
    screenshot(&cashier, "cashier.png", shots.path());
    screenshot(&customer, "customer.png", shots.path());

    // A code that has expired: above 50 yuan, so the cashier confirms the amount first; then it is declined,
    // with the reason on the cashier's screen, and "declined" on the customer's.
    let wallet = SimulatedWallet::new(WALLET_SEED, Provider::WeChatPay, 21);
    let expired = wallet.issue_code(UnixMillis(UnixMillis::now().0 - 10 * 60_000));
    scan(expired.expose_digits().to_owned(), Symbology::QrCode).await;
    wait(
        &cashier,
        "amount to confirm",
        "return document.getElementById('payment').className.includes('phase-confirm_amount')",
    );
    cashier.press_keys(browser::ENTER).expect("confirm the amount");
    wait(
        &cashier,
        "declined with a reason",
        "const p = document.getElementById('payment'); return p.className.includes('phase-declined') && p.querySelector('.reason').textContent.length > 5",
    );
    wait(
        &customer,
        "customer sees declined",
        "return document.getElementById('message').className.includes('phase-declined')",
    );
    let reason = cashier.text("#payment .reason").expect("reason");

    // The next code pays; pressing the confirming key again charges nothing more.
    let code = wallet.issue_code(UnixMillis::now());
    scan(code.expose_digits().to_owned(), Symbology::QrCode).await;
    wait(
        &cashier,
        "amount to confirm again",
        "return document.getElementById('payment').className.includes('phase-confirm_amount')",
    );
    cashier.press_keys(browser::ENTER).expect("confirm");
    cashier.press_keys(browser::ENTER).expect("confirm twice");
    // The store tells the lane how the charge goes: the customer is typing their password.
    wait(
        &cashier,
        "waiting for the password",
        "return document.getElementById('payment').textContent.includes(\"customer's password\")",
    );
    wait(
        &customer,
        "customer asked to confirm",
        "return document.getElementById('message').className.includes('phase-password')",
    );
    screenshot(&cashier, "cashier-password.png", shots.path());
    wait(&cashier, "paid", "return document.getElementById('payment').className.includes('phase-paid')");
    wait(&customer, "customer sees paid", "return document.getElementById('message').className.includes('phase-paid')");
    screenshot(&customer, "customer-paid.png", shots.path());
    let sale_no = cashier.text("#sale-no").expect("sale number");
    assert!(sale_no.contains("L1-"), "the sale number stays after payment: {sale_no}");
    let masked = code.masked().to_string();
    wait(
        &cashier,
        "masked code shown",
        &format!("return document.getElementById('payment').textContent.includes('{masked}')"),
    );
    wait(&cashier, "shift tally", "return document.getElementById('tally').textContent.includes('1 sales')");

    // Neither page holds the full code; the customer display holds no control, and not even the masked code.
    let full = code.expose_digits().to_owned();
    for (page, browser) in [("cashier", &cashier), ("customer", &customer)] {
        let html = browser.eval("return document.documentElement.outerHTML").expect("html");
        assert!(!html.as_str().unwrap_or_default().contains(&full), "the {page} page holds the full code");
    }
    let controls = customer.count("button, input, select, textarea, a, [onclick], [contenteditable]").expect("count");
    assert_eq!(controls, 0, "the customer display holds no control");
    let customer_html = customer.eval("return document.documentElement.outerHTML").expect("html");
    let customer_html = customer_html.as_str().unwrap_or_default();
    assert!(!customer_html.contains(&masked) && !customer_html.contains("cashier-L1"), "{customer_html}");
    // A payment that was declined and one paid: one charge moved money.
    let mut store = manager_client(&coordinator.url).await;
    let payments = all_payments(&mut store, "L1").await;
    let paid: Vec<_> =
        payments.iter().filter(|p| p.outcome == checkout_proto::v1::PaymentOutcome::Paid as i32).collect();
    assert_eq!(paid.len(), 1, "one paid charge: {payments:?}");
    assert_eq!(paid[0].amount.as_ref().map(|m| m.minor_units), Some(7_530));
    assert!(!reason.is_empty());

    // A second tab of the cashier's screen shows the same state as the first.
    let first = cashier.current_handle().expect("handle");
    let seq = cashier.eval("return document.body.dataset.seq").expect("seq");
    let second = cashier.new_tab().expect("tab");
    cashier.switch_to(&second).expect("switch");
    cashier.open(&cashier_url_again).expect("second tab");
    wait(&cashier, "second tab in step", &format!("return document.body.dataset.seq === {seq}"));
    wait(&cashier, "second tab paid", "return document.getElementById('payment').className.includes('phase-paid')");

    // The next sale clears the last customer's basket on both pages.
    scan(eggs.gtin.to_string(), Symbology::Ean13).await;
    wait_for_basket(&cashier, "cashier, next sale", &[eggs.name.as_str()], "¥15.80");
    wait_for_basket(&customer, "customer, next sale", &[eggs.name.as_str()], "¥15.80");
    cashier.switch_to(&first).expect("first tab");
    wait_for_basket(&cashier, "first tab, next sale", &[eggs.name.as_str()], "¥15.80");

    // Cancel takes two presses; the basket is gone from both pages and nothing was charged.
    cashier.press_keys(F9).expect("F9");
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(names(&cashier), [eggs.name.as_str()], "one press does not cancel");
    cashier.press_keys(F9).expect("F9 again");
    wait(
        &cashier,
        "cancelled",
        "return document.querySelectorAll('#lines tr').length === 0 && document.getElementById('to-pay').textContent === '—'",
    );
    wait(&customer, "customer after cancel", "return document.querySelectorAll('#lines tr').length === 0");

    // Paused: the customer display says the lane is closed and a scan is not taken.
    cashier.press_keys(F10).expect("pause");
    wait(
        &customer,
        "customer sees the lane closed",
        "return document.getElementById('message').className.includes('phase-closed')",
    );
    scan(milk.gtin.to_string(), Symbology::Ean13).await;
    wait(
        &cashier,
        "scan refused while paused",
        "return document.getElementById('notice').textContent.includes('paused')",
    );
    assert_eq!(cashier.count("#lines tr").expect("lines"), 0);
    cashier.press_keys(F10).expect("resume");
    wait(
        &customer,
        "customer sees the lane open",
        "return !document.getElementById('message').className.includes('phase-closed')",
    );
    // Signing off needs no sale open; the cashier's name goes from the screen.
    cashier.press_keys(F8).expect("sign off");
    wait(&cashier, "signed off", "return document.getElementById('cashier').textContent === '—'");

    drop(trigger);
    let summary = lane.await.expect("lane");
    assert_eq!((summary.sales, summary.declined), (1, 1));
    drop((cashier, customer));
    coordinator.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_screens_refuse_a_page_without_the_key_and_bounded_requests() {
    let dir = tempfile::tempdir().expect("tempdir");
    let sim = Arc::new(SimulatedProvider::new(WALLET_SEED, 100_000));
    let coordinator = start_coordinator(&dir.path().join("store"), &sim).await;
    let (trigger, scanner) = hand_held_scanner();
    let mut screen = ScreenConfig::new(ScreenListener::bind("127.0.0.1:0").expect("bind")).expect("screen");
    screen.lang = Lang::Zh;
    let cashier_url = screen.cashier_url().expect("url");
    let address = screen.listener.local_addr().expect("address");
    let key = screen.key.expose().to_owned();
    let mut config =
        LaneConfig::new(LaneId::parse("L2").unwrap(), coordinator.url.clone(), FrameSource::HandHeld(scanner));
    config.credentials = lane_credentials("L2");
    config.screen = Some(screen);
    let lane = tokio::spawn(crate::common::run_lane(config));

    let post = move |key: Option<String>, body: String| {
        let key = key.map(|k| format!("X-Screen-Key: {k}\r\n")).unwrap_or_default();
        let request = format!(
            "POST /action HTTP/1.1\r\nHost: {address}\r\nContent-Type: application/json\r\n{key}Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        );
        async move { raw_http(address, request).await.1 }
    };
    // Wait for the lane to register and serve.
    let mut answer = String::new();
    for _ in 0..100 {
        answer = post(Some(key.clone()), r#"{"action":"pause"}"#.into()).await;
        if answer.starts_with("HTTP/1.1 200") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(answer.starts_with("HTTP/1.1 200"), "the cashier's key works: {answer}");
    let without = post(None, r#"{"action":"resume"}"#.into()).await;
    assert!(without.starts_with("HTTP/1.1 401"), "{without}");
    let wrong = post(Some("0".repeat(32)), r#"{"action":"resume"}"#.into()).await;
    assert!(wrong.starts_with("HTTP/1.1 401"), "{wrong}");
    let nonsense = post(Some(key.clone()), r#"{"action":"charge_twice"}"#.into()).await;
    assert!(nonsense.starts_with("HTTP/1.1 400"), "{nonsense}");
    let huge = post(Some(key.clone()), format!(r#"{{"action":"key_in","digits":"{}"}}"#, "1".repeat(100_000))).await;
    assert!(huge.starts_with("HTTP/1.1 413") || huge.starts_with("HTTP/1.1 400"), "{}", &huge[..huge.len().min(200)]);
    let confirm = post(Some(key.clone()), r#"{"action":"confirm_charge","minor_units":100}"#.into()).await;
    assert!(confirm.starts_with("HTTP/1.1 409") && confirm.contains("no payment code"), "{confirm}");
    // A payment code typed (a scanner in keyboard mode) is refused and never echoed.
    let wallet = SimulatedWallet::new(WALLET_SEED, Provider::Alipay, 3);
    let code = wallet.issue_code(UnixMillis::now());
    let typed = post(Some(key.clone()), format!(r#"{{"action":"key_in","digits":"{}"}}"#, code.expose_digits())).await;
    assert!(typed.starts_with("HTTP/1.1 409") && !typed.contains(code.expose_digits()), "{typed}");
    let malformed =
        post(Some(key.clone()), format!(r#"{{"action":"set_quantity","quantity":"{}"}}"#, code.expose_digits())).await;
    assert!(malformed.starts_with("HTTP/1.1 400") && !malformed.contains(code.expose_digits()), "{malformed}");
    let bad_price = post(Some(key.clone()), r#"{"action":"open_price","minor_units":99999999}"#.into()).await;
    assert!(bad_price.starts_with("HTTP/1.1 409"), "{bad_price}");

    // The labels in Chinese, the default (a screenshot for the README; the machine needs CJK fonts to show them).
    let resume = post(Some(key.clone()), r#"{"action":"resume"}"#.into()).await;
    assert!(resume.starts_with("HTTP/1.1 200"), "{resume}");
    let catalog = sample_catalog();
    for product in catalog.iter().take(4) {
        trigger.pull(FrameInput::Decoded(vec![(product.gtin.to_string(), Symbology::Ean13)])).await.expect("scan");
    }
    // A line named by what the cashier saw: a stale one (another product now on line 0) is not taken out.
    let stale = format!(
        r#"{{"action":"remove_line","line":0,"gtin":"{}","unit_price":{}}}"#,
        catalog[1].gtin, catalog[1].price.minor_units
    );
    let answer = post(Some(key.clone()), stale).await;
    assert!(answer.starts_with("HTTP/1.1 409") && answer.contains("basket changed"), "{answer}");
    let shots = tempfile::tempdir().expect("tempdir");
    let keep = shots.path().to_owned();
    tokio::task::spawn_blocking(move || {
        let browser = Browser::start().expect("chromium");
        browser.open(&cashier_url).expect("cashier page");
        viewport(&browser, 1024, 768);
        wait(&browser, "four lines", "return document.querySelectorAll('#lines tr').length === 4");
        wait(
            &browser,
            "Chinese labels",
            "return document.getElementById('to-pay').previousElementSibling.textContent === '应付'",
        );
        screenshot(&browser, "cashier-zh.png", &keep);
    })
    .await
    .expect("browser");

    // A page of another site whose name resolves to 127.0.0.1 (DNS rebinding) gets nothing.
    let request = format!("GET /events/customer HTTP/1.1\r\nHost: shop.example:{}\r\n\r\n", address.port());
    let (status, rebound) = raw_http(address, request).await;
    assert_eq!(status, 403, "{rebound}");

    // Event streams: the cashier's needs the key; a page opening streams in a loop gets at most 32.
    let (status, _) = open_stream(address, "/events/cashier").await;
    assert_eq!(status, 401);
    let (status, first) = open_stream(address, &format!("/events/cashier?key={key}")).await;
    assert!(status == 200 && first.contains("data: {") && first.contains("\"cashier\""), "{first}");
    let mut held = Vec::new();
    for _ in 0..32 {
        held.push(std::net::TcpStream::connect(address).expect("connect"));
    }
    for stream in &mut held {
        use std::io::Write;
        write!(stream, "GET /events/customer HTTP/1.1\r\nHost: {address}\r\n\r\n").expect("write");
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let (status, refused) = open_stream(address, "/events/customer").await;
    assert_eq!(status, 503, "{refused}");
    drop(held);
    let mut status = 0;
    for _ in 0..50 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        status = open_stream(address, "/events/customer").await.0;
        if status == 200 {
            break;
        }
    }
    assert_eq!(status, 200, "closed streams give their places back");

    drop(trigger);
    lane.await.expect("lane");
    coordinator.stop().await;
}

/// Opens an event stream and reads what comes in the first half second: the status and the text.
async fn open_stream(address: std::net::SocketAddr, path: &str) -> (u16, String) {
    raw_http(address, format!("GET {path} HTTP/1.1\r\nHost: {address}\r\n\r\n")).await
}

/// Sends `request` as it is and reads the answer until the server closes or half a second passes: the status
/// and the text.
async fn raw_http(address: std::net::SocketAddr, request: String) -> (u16, String) {
    tokio::task::spawn_blocking(move || {
        use std::io::{Read, Write};
        let mut stream = std::net::TcpStream::connect(address).expect("connect");
        stream.set_read_timeout(Some(Duration::from_millis(500))).expect("timeout");
        // A server that refuses early may close before all of a large request is written: the answer tells.
        let _ = stream.write_all(request.as_bytes());
        let mut text = Vec::new();
        let mut buffer = [0u8; 4096];
        while let Ok(n) = stream.read(&mut buffer) {
            if n == 0 {
                break;
            }
            text.extend_from_slice(&buffer[..n]);
        }
        let text = String::from_utf8_lossy(&text).into_owned();
        let status = text.get(9..12).and_then(|s| s.parse().ok()).unwrap_or(0);
        (status, text)
    })
    .await
    .expect("thread")
}
