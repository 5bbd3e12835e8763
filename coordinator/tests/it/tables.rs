//! The provider protocols' tables and signatures: every answer code sorted, signatures against known vectors.

use std::{collections::BTreeMap, time::Duration};

use checkout_coordinator::providers::{
    OrderState, ProviderAnswer, RefundAnswer, ReverseAnswer,
    alipay::{self},
    messages,
    wechat::{self, SignType},
};
use checkout_storage::{ChargeStatus, Currency, Money, UnixMillis};

use crate::test_keys;

const NOW: Duration = Duration::ZERO;
const WAIT: Duration = Duration::from_secs(5);

// ------------------------------------------------------------------ tables

pub(crate) fn sorted(answer: &ProviderAnswer) -> (ChargeStatus, &str, Duration) {
    (answer.status, answer.message.as_str(), answer.query_after)
}

#[test]
fn every_wechat_micropay_code_sorts_into_an_outcome_and_a_cashier_message() {
    use ChargeStatus::{Failed, NewCodeNeeded, Paid, Unknown};
    let table: &[(&str, ChargeStatus, &str, Duration)] = &[
        ("SUCCESS", Paid, messages::PAID, NOW),
        // Unknown, never failed: query (after the password, or at once).
        ("USERPAYING", Unknown, messages::CUSTOMER_CONFIRMING, WAIT),
        ("SYSTEMERROR", Unknown, messages::UNCERTAIN, NOW),
        ("BANKERROR", Unknown, messages::UNCERTAIN, NOW),
        (checkout_coordinator::providers::HTTP_202, Unknown, messages::UNCERTAIN, NOW),
        // The order number was paid before: only the query can say by whom.
        ("ORDERPAID", Unknown, messages::UNCERTAIN, NOW),
        // A fresh code or another way to pay.
        ("AUTHCODEEXPIRE", NewCodeNeeded, messages::FRESH_CODE, NOW),
        ("NOTENOUGH", NewCodeNeeded, messages::NOT_ENOUGH, NOW),
        ("NOTSUPORTCARD", NewCodeNeeded, messages::OTHER_METHOD, NOW),
        ("AUTH_CODE_ERROR", NewCodeNeeded, messages::CODE_USED, NOW),
        ("AUTH_CODE_INVALID", NewCodeNeeded, messages::FRESH_CODE, NOW),
        ("BUYER_MISMATCH", NewCodeNeeded, messages::FRESH_CODE, NOW),
        // Definite failures of this order.
        ("PARAM_ERROR", Failed, messages::FAILED, NOW),
        ("ORDERCLOSED", Failed, messages::FAILED, NOW),
        ("ORDERREVERSED", Failed, messages::FAILED, NOW),
        ("OUT_TRADE_NO_USED", Failed, messages::FAILED, NOW),
        ("NOAUTH", Failed, messages::FAILED, NOW),
        ("INVALID_REQUEST", Failed, messages::FAILED, NOW),
        ("TRADE_ERROR", Failed, messages::FAILED, NOW),
        ("SIGNERROR", Failed, messages::FAILED, NOW),
        ("XML_FORMAT_ERROR", Failed, messages::FAILED, NOW),
        // Anything unlisted is unknown.
        ("FAIL", Unknown, messages::UNCERTAIN, NOW),
        ("SOMETHING_NEW", Unknown, messages::UNCERTAIN, NOW),
        ("", Unknown, messages::UNCERTAIN, NOW),
    ];
    for (code, status, message, after) in table {
        let answer = wechat::micropay_answer(code);
        assert_eq!(sorted(&answer), (*status, *message, *after), "{code}");
        assert_eq!(answer.provider_code, *code);
    }
    assert!(messages::FRESH_CODE.contains("fresh"));
    assert!(messages::NOT_ENOUGH.contains("insufficient balance") && messages::NOT_ENOUGH.contains("another"));
    assert!(messages::UNCERTAIN.contains("uncertain") && messages::UNCERTAIN.contains("do not hand over"));
}

#[test]
fn every_alipay_pay_code_sorts_into_an_outcome_and_a_cashier_message() {
    use ChargeStatus::{Failed, NewCodeNeeded, Paid, Unknown};
    let table: &[(&str, &str, ChargeStatus, &str, Duration)] = &[
        ("10000", "", Paid, messages::PAID, NOW),
        ("10003", "", Unknown, messages::CUSTOMER_CONFIRMING, WAIT),
        ("20000", "", Unknown, messages::UNCERTAIN, NOW),
        ("20000", "aop.ACQ.SYSTEM_ERROR", Unknown, messages::UNCERTAIN, NOW),
        (checkout_coordinator::providers::HTTP_202, "", Unknown, messages::UNCERTAIN, NOW),
        ("40004", "ACQ.PAYMENT_AUTH_CODE_INVALID", NewCodeNeeded, messages::FRESH_CODE, NOW),
        ("40004", "ACQ.BUYER_BALANCE_NOT_ENOUGH", NewCodeNeeded, messages::NOT_ENOUGH, NOW),
        ("40004", "ACQ.BUYER_BANKCARD_BALANCE_NOT_ENOUGH", NewCodeNeeded, messages::NOT_ENOUGH, NOW),
        ("40004", "ACQ.BUYER_PAYMENT_AMOUNT_DAY_LIMIT_ERROR", NewCodeNeeded, messages::OTHER_METHOD, NOW),
        ("40004", "ACQ.TRADE_HAS_SUCCESS", Unknown, messages::UNCERTAIN, NOW),
        ("40004", "ACQ.SYSTEM_ERROR", Unknown, messages::UNCERTAIN, NOW),
        ("40004", "ACQ.TRADE_HAS_CLOSE", Failed, messages::FAILED, NOW),
        ("40004", "ACQ.TOTAL_FEE_EXCEED", Failed, messages::FAILED, NOW),
        ("40004", "ACQ.SOMETHING_NEW", Unknown, messages::UNCERTAIN, NOW),
        ("40002", "isv.invalid-signature", Failed, messages::FAILED, NOW),
        ("40001", "isv.missing-method", Failed, messages::FAILED, NOW),
        ("99999", "", Unknown, messages::UNCERTAIN, NOW),
    ];
    for (code, sub_code, status, message, after) in table {
        let answer = alipay::pay_answer(code, sub_code);
        assert_eq!(sorted(&answer), (*status, *message, *after), "{code}/{sub_code}");
        let expected = if sub_code.is_empty() { code.to_string() } else { format!("{code}/{sub_code}") };
        assert_eq!(answer.provider_code, expected);
    }
}

#[test]
fn query_reverse_and_refund_codes_sort_as_documented() {
    let amount = Money::new(1_234, Currency::CNY);
    let paid = OrderState::Paid { transaction_id: "T".into(), amount };
    for (state, expected) in [
        ("SUCCESS", Some(paid.clone())),
        ("REFUND", Some(OrderState::Refunded)),
        ("NOTPAY", Some(OrderState::NotPaid)),
        ("PAYERROR", Some(OrderState::NotPaid)),
        ("CLOSED", Some(OrderState::Closed)),
        ("REVOKED", Some(OrderState::Closed)),
        ("USERPAYING", Some(OrderState::Paying)),
        ("ORDERNOTEXIST", Some(OrderState::NotFound)),
        ("SYSTEMERROR", None),
    ] {
        assert_eq!(wechat::query_state(state, "T", amount), expected, "{state}");
    }
    for (status, expected) in [
        ("TRADE_SUCCESS", Some(paid.clone())),
        ("TRADE_FINISHED", Some(paid.clone())),
        ("WAIT_BUYER_PAY", Some(OrderState::Paying)),
        ("TRADE_CLOSED", Some(OrderState::Closed)),
        ("ACQ.TRADE_NOT_EXIST", Some(OrderState::NotFound)),
        ("ACQ.SYSTEM_ERROR", None),
    ] {
        assert_eq!(alipay::query_state(status, "T", amount), expected, "{status}");
    }

    assert_eq!(wechat::reverse_answer("SUCCESS", "", "N", true), ReverseAnswer::Reversed { refunded: true });
    assert_eq!(wechat::reverse_answer("FAIL", "SYSTEMERROR", "Y", false), ReverseAnswer::CallAgain);
    assert_eq!(wechat::reverse_answer("FAIL", "USERPAYING", "", false), ReverseAnswer::CallAgain);
    assert_eq!(wechat::reverse_answer("FAIL", "SOMETHING_NEW", "", false), ReverseAnswer::CallAgain);
    assert_eq!(
        wechat::reverse_answer("FAIL", "ORDERNOTEXIST", "N", false),
        ReverseAnswer::Reversed { refunded: false }
    );
    assert_eq!(
        wechat::reverse_answer("FAIL", "REVERSE_EXPIRE", "N", false),
        ReverseAnswer::Refused { provider_code: "REVERSE_EXPIRE".into() }
    );
    assert_eq!(
        wechat::reverse_answer("FAIL", "TRADE_OVERDUE", "N", false),
        ReverseAnswer::Refused { provider_code: "TRADE_OVERDUE".into() }
    );
    assert_eq!(alipay::cancel_answer("10000", "", "refund", "N"), ReverseAnswer::Reversed { refunded: true });
    assert_eq!(alipay::cancel_answer("10000", "", "close", "N"), ReverseAnswer::Reversed { refunded: false });
    assert_eq!(alipay::cancel_answer("40004", "ACQ.SYSTEM_ERROR", "", "Y"), ReverseAnswer::CallAgain);
    assert_eq!(alipay::cancel_answer("20000", "", "", ""), ReverseAnswer::CallAgain);
    assert!(matches!(
        alipay::cancel_answer("40004", "ACQ.TRADE_CANCEL_TIME_OUT", "", "N"),
        ReverseAnswer::Refused { .. }
    ));
    assert_eq!(alipay::cancel_answer("40004", "ACQ.SOMETHING_NEW", "", "N"), ReverseAnswer::CallAgain);
    assert_eq!(
        alipay::cancel_answer("40004", "ACQ.TRADE_NOT_EXIST", "", "N"),
        ReverseAnswer::Reversed { refunded: false }
    );

    assert_eq!(wechat::refund_answer("SUCCESS", "R1"), RefundAnswer::Accepted { refund_id: "R1".into() });
    assert!(matches!(wechat::refund_answer("SYSTEMERROR", ""), RefundAnswer::Unknown { .. }));
    assert!(matches!(wechat::refund_answer("BIZERR_NEED_RETRY", ""), RefundAnswer::Unknown { .. }));
    assert!(matches!(wechat::refund_answer("INVALID_REQ_TOO_MUCH", ""), RefundAnswer::Refused { .. }));
    assert!(matches!(wechat::refund_answer("NEW_CODE", ""), RefundAnswer::Unknown { .. }));
    assert!(matches!(alipay::refund_answer("10000", "", "R"), RefundAnswer::Accepted { .. }));
    assert!(matches!(alipay::refund_answer("20000", "", ""), RefundAnswer::Unknown { .. }));
    assert!(matches!(alipay::refund_answer("40004", "ACQ.SYSTEM_ERROR", ""), RefundAnswer::Unknown { .. }));
    assert!(matches!(alipay::refund_answer("40004", "ACQ.TRADE_NOT_EXIST", ""), RefundAnswer::Refused { .. }));
}

#[test]
fn yuan_are_converted_with_integers_only() {
    for (fen, yuan) in [(1, "0.01"), (10, "0.10"), (1_234, "12.34"), (100, "1.00"), (0, "0.00"), (-5, "-0.05")] {
        assert_eq!(alipay::fen_to_yuan(fen), yuan);
    }
    assert_eq!(alipay::fen_to_yuan(10_000_000_000), "100000000.00");
    assert_eq!(alipay::yuan_to_fen("12.34"), Some(1_234));
    assert_eq!(alipay::yuan_to_fen("12.3"), Some(1_230));
    assert_eq!(alipay::yuan_to_fen("12"), Some(1_200));
    assert_eq!(alipay::yuan_to_fen("0.01"), Some(1));
    for bad in ["", ".5", "1.234", "-1.00", "1,00", " 1.00", "1e2", "abc"] {
        assert_eq!(alipay::yuan_to_fen(bad), None, "{bad:?}");
    }
    // 2026-11-25 10:49:38 UTC is 18:49:38 in China; 16:30 UTC is past midnight there.
    assert_eq!(alipay::china_datetime(UnixMillis(1_795_603_778_000)), "2026-11-25 18:49:38");
    assert_eq!(alipay::china_date(UnixMillis(1_795_624_200_000)), "2026-11-26");
}

// -------------------------------------------------------------- signatures

fn documented_example() -> BTreeMap<String, String> {
    [
        ("appid", "wxd930ea5d5a258f4f"),
        ("mch_id", "10000100"),
        ("device_info", "1000"),
        ("body", "test"),
        ("nonce_str", "ibuaiVcKdpRxkhJA"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect()
}

#[test]
fn wechat_signatures_match_the_documented_example() {
    const KEY: &str = "192006250b4c09247ec02edce69f6a2d";
    let mut params = documented_example();
    params.insert("empty".into(), String::new());
    assert_eq!(
        wechat::string_to_sign(&params, KEY),
        "appid=wxd930ea5d5a258f4f&body=test&device_info=1000&mch_id=10000100&nonce_str=ibuaiVcKdpRxkhJA\
         &key=192006250b4c09247ec02edce69f6a2d"
    );
    assert_eq!(wechat::sign(&params, KEY, SignType::Md5), "9A0A8659F005D6984697E2CA0A9CF3B7");
    assert_eq!(
        wechat::sign(&params, KEY, SignType::HmacSha256),
        "6A9AE1657590FD6257D693A078E1C3E4BB6BA4DC30B23E0EE2496E54170DACD6"
    );

    params.insert("sign_type".into(), "HMAC-SHA256".into());
    let signature = wechat::sign(&params, KEY, SignType::HmacSha256);
    params.insert("sign".into(), signature);
    assert!(wechat::verify(&params, KEY));
    assert!(!wechat::verify(&params, "another key"));
    let mut tampered = params.clone();
    tampered.insert("body".into(), "test2".into());
    assert!(!wechat::verify(&tampered, KEY));
    let mut unsigned = params;
    unsigned.remove("sign");
    assert!(!wechat::verify(&unsigned, KEY));
}

#[test]
fn wechat_xml_round_trips_and_reads_plain_text() {
    let mut params = documented_example();
    params.insert("body".into(), "牛奶 & <bread> ]]> end".into());
    let parsed = wechat::parse_xml(&wechat::to_xml(&params)).unwrap();
    assert_eq!(parsed, params);
    let plain = "<?xml version=\"1.0\"?>\n<xml>\n  <return_code>SUCCESS</return_code>\n  \
                 <total_fee>1</total_fee><msg>a &amp; b</msg>\n</xml>";
    let parsed = wechat::parse_xml(plain).unwrap();
    assert_eq!(parsed["return_code"], "SUCCESS");
    assert_eq!(parsed["total_fee"], "1");
    assert_eq!(parsed["msg"], "a & b");
    assert!(wechat::parse_xml("<xml><a><b>1</b></a></xml>").is_err());
    assert!(wechat::parse_xml("not xml").is_err());
}

#[test]
fn alipay_rsa2_matches_an_openssl_vector_and_rejects_tampering() {
    let params: BTreeMap<String, String> = [
        ("app_id", "2021000000000001"),
        ("biz_content", r#"{"out_trade_no":"S001-L1-X-1","total_amount":"0.01"}"#),
        ("charset", "utf-8"),
        ("method", "alipay.trade.pay"),
        ("sign_type", "RSA2"),
        ("timestamp", "2026-11-25 18:00:00"),
        ("version", "1.0"),
        ("sign", "ignored"),
        ("empty", ""),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect();
    let content = alipay::request_content(&params);
    assert_eq!(
        content,
        r#"app_id=2021000000000001&biz_content={"out_trade_no":"S001-L1-X-1","total_amount":"0.01"}&charset=utf-8&method=alipay.trade.pay&sign_type=RSA2&timestamp=2026-11-25 18:00:00&version=1.0"#
    );
    // `printf %s "$content" | openssl dgst -sha256 -sign testdata/test-only-merchant-private.pem | base64 -w0`
    const OPENSSL: &str = "Gkx7a5Fi1O2ReyyX9EjIfxpV4Val9MdwsL9UmSr9erD0Zp5EUhdvrmvHNIJzJzjpH31BduFqkijwvj15h+dJKyG2/kmSOkLfrXmcVN6aEBWPGwhLW6Pq+3PQXPMMSa10Q+leL3PV+oR6ktXRGkUH0f4NSjKg+gmz4kHCk28KRu0Q4MhNzyL2gKbKi1h3od+mE3zOuuOythJEPq84Q/YAgMKVvB9cAb1rmlaNaaOjgyzmZbmCl4mHJfxUT7FosF1ZPCQZ+XQVKFVUDWTYpaqPN4Kc3OFW/HNWOTOhN8rY3NfztZcSByvoere9MeikwX8YckVuDf4Fc8WqIVnzzgswTw==";
    let private = alipay::private_key(test_keys::MERCHANT_PRIVATE_PEM).unwrap();
    let public = alipay::public_key(test_keys::MERCHANT_PUBLIC_PEM).unwrap();
    assert_eq!(alipay::rsa2_sign(&private, &content), OPENSSL);
    assert!(alipay::rsa2_verify(&public, &content, OPENSSL));
    assert!(!alipay::rsa2_verify(&public, &content.replace("0.01", "0.02"), OPENSSL));
    assert!(!alipay::rsa2_verify(&public, &content, "not base64!"));
    let other = alipay::public_key(test_keys::ALIPAY_PUBLIC_PEM).unwrap();
    assert!(!alipay::rsa2_verify(&other, &content, OPENSSL));

    // Bare base64 keys, as Alipay's console hands them out, read the same.
    let bare: String = test_keys::MERCHANT_PUBLIC_PEM.lines().filter(|l| !l.starts_with("-----")).collect();
    assert!(alipay::rsa2_verify(&alipay::public_key(&bare).unwrap(), &content, OPENSSL));

    // An answer's signature covers the exact text of its *_response value.
    let body = r#"{"alipay_trade_pay_response":{"code":"10000","msg":"Success","total_amount":"0.01"},"sign":"S"}"#;
    let (text, sign) = alipay::response_parts(body, "alipay_trade_pay_response").unwrap();
    assert_eq!(text, r#"{"code":"10000","msg":"Success","total_amount":"0.01"}"#);
    assert_eq!(sign.as_deref(), Some("S"));
}
