//! The adapters over HTTPS: a local TLS server with a CA, server and client certificates made at test time (rcgen).
//!
//! Trusting the test CA through `extra_root_ca_pem` gets answers; an unknown CA or a missing client
//! certificate (where the server requires one) leaves the outcome unknown (`Unreachable`), never "failed".

use std::{
    collections::BTreeMap,
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
    time::Duration,
};

use checkout_coordinator::{
    PaymentProvider,
    providers::{
        MicropayRequest, ProviderError, RefundAnswer, RefundRequest,
        alipay::AlipayAdapter,
        wechat::{self, SignType, WeChatConfig, WeChatPayV2},
    },
    sim,
};
use checkout_storage::{ChargeStatus, Currency, LaneId, Money, OutTradeNo, Provider, SimulatedWallet, UnixMillis};
use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair, KeyUsagePurpose,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_rustls::rustls::{
    self, RootCertStore, ServerConfig,
    pki_types::{CertificateDer, PrivateKeyDer, pem::PemObject},
    server::WebPkiClientVerifier,
};

/// A test CA and the certificates it signed, all made for this run only.
struct TestPki {
    ca_pem: String,
    server_cert_pem: String,
    server_key_pem: String,
    client_cert_pem: String,
    client_key_pem: String,
}

impl TestPki {
    fn new(ca_name: &str) -> TestPki {
        let ca_key = KeyPair::generate().unwrap();
        let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca_params.distinguished_name.push(DnType::CommonName, ca_name);
        ca_params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let ca_cert = ca_params.self_signed(&ca_key).unwrap();
        let issuer = Issuer::new(ca_params, ca_key);

        let server_key = KeyPair::generate().unwrap();
        let mut server_params = CertificateParams::new(vec!["127.0.0.1".to_owned(), "localhost".to_owned()]).unwrap();
        server_params.distinguished_name.push(DnType::CommonName, "test provider");
        server_params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        let server_cert = server_params.signed_by(&server_key, &issuer).unwrap();

        let client_key = KeyPair::generate().unwrap();
        let mut client_params = CertificateParams::new(Vec::<String>::new()).unwrap();
        client_params.distinguished_name.push(DnType::CommonName, "1900000001");
        client_params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        let client_cert = client_params.signed_by(&client_key, &issuer).unwrap();

        TestPki {
            ca_pem: ca_cert.pem(),
            server_cert_pem: server_cert.pem(),
            server_key_pem: server_key.serialize_pem(),
            client_cert_pem: client_cert.pem(),
            client_key_pem: client_key.serialize_pem(),
        }
    }

    fn identity(&self) -> (Option<String>, Option<String>) {
        (Some(self.client_cert_pem.clone()), Some(self.client_key_pem.clone()))
    }
}

/// A WeChat Pay stand-in on 127.0.0.1 over TLS: every request gets a signed SUCCESS for the simulator's merchant.
struct TlsProvider {
    base: String,
    /// Requests that got through the handshake and were read (and then answered).
    answered: Arc<AtomicUsize>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for TlsProvider {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl TlsProvider {
    /// `client_ca`: require a client certificate signed by this CA.
    async fn start(pki: &TestPki, client_ca: Option<&str>) -> TlsProvider {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let builder =
            ServerConfig::builder_with_provider(provider.clone()).with_safe_default_protocol_versions().unwrap();
        let builder = match client_ca {
            None => builder.with_no_client_auth(),
            Some(pem) => {
                let mut roots = RootCertStore::empty();
                for cert in CertificateDer::pem_slice_iter(pem.as_bytes()) {
                    roots.add(cert.unwrap()).unwrap();
                }
                let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider).build().unwrap();
                builder.with_client_cert_verifier(verifier)
            }
        };
        let chain = CertificateDer::pem_slice_iter(pki.server_cert_pem.as_bytes()).collect::<Result<Vec<_>, _>>();
        let key = PrivateKeyDer::from_pem_slice(pki.server_key_pem.as_bytes()).unwrap();
        let config = builder.with_single_cert(chain.unwrap(), key).unwrap();
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));

        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("https://{}", listener.local_addr().unwrap());
        let answered = Arc::new(AtomicUsize::new(0));
        let counter = answered.clone();
        let task = tokio::spawn(async move {
            loop {
                let Ok((tcp, _)) = listener.accept().await else { return };
                let (acceptor, counter) = (acceptor.clone(), counter.clone());
                tokio::spawn(async move {
                    // A refused handshake just drops the connection.
                    let Ok(mut tls) = acceptor.accept(tcp).await else { return };
                    let Some((path, body)) = read_request(&mut tls).await else { return };
                    let answer = answer_for(&path, &body);
                    let response = format!(
                        "HTTP/1.1 200 OK\r\ncontent-type: text/xml\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{answer}",
                        answer.len()
                    );
                    // Counted before the answer goes out, so the client never sees an answer not yet counted.
                    counter.fetch_add(1, Ordering::SeqCst);
                    let _ = tls.write_all(response.as_bytes()).await;
                    let _ = tls.shutdown().await;
                });
            }
        });
        TlsProvider { base, answered, task }
    }

    fn answered(&self) -> usize {
        self.answered.load(Ordering::SeqCst)
    }
}

/// One HTTP/1.1 request: its path and body (by `content-length`). `None` if the client went away.
async fn read_request<S: tokio::io::AsyncRead + Unpin>(stream: &mut S) -> Option<(String, String)> {
    let mut buffer = Vec::new();
    let mut chunk = [0u8; 4096];
    let head_end = loop {
        if let Some(at) = buffer.windows(4).position(|w| w == b"\r\n\r\n") {
            break at + 4;
        }
        let n = stream.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        buffer.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8_lossy(&buffer[..head_end]).into_owned();
    let path = head.split_whitespace().nth(1)?.to_owned();
    let length: usize = head
        .lines()
        .find_map(|line| {
            let (name, value) = line.split_once(':')?;
            name.eq_ignore_ascii_case("content-length").then(|| value.trim().parse().ok())?
        })
        .unwrap_or(0);
    while buffer.len() < head_end + length {
        let n = stream.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        buffer.extend_from_slice(&chunk[..n]);
    }
    Some((path, String::from_utf8_lossy(&buffer[head_end..head_end + length]).into_owned()))
}

/// A SUCCESS for the simulator's merchant, signed with its key (HMAC-SHA256), echoing the order's amount.
fn answer_for(path: &str, body: &str) -> String {
    let config = sim::wechat_merchant("http://unused");
    let request = wechat::parse_xml(body).unwrap_or_default();
    let echo = |name: &str| request.get(name).cloned().unwrap_or_default();
    let mut fields = BTreeMap::from([
        ("return_code".to_owned(), "SUCCESS".to_owned()),
        ("result_code".to_owned(), "SUCCESS".to_owned()),
        ("appid".to_owned(), config.appid.clone()),
        ("mch_id".to_owned(), config.mch_id.clone()),
        ("nonce_str".to_owned(), "5K8264ILTKCH16CQ2502SI8ZNMTM67VS".to_owned()),
        ("out_trade_no".to_owned(), echo("out_trade_no")),
        ("total_fee".to_owned(), echo("total_fee")),
        ("fee_type".to_owned(), "CNY".to_owned()),
        ("trade_state".to_owned(), "SUCCESS".to_owned()),
        ("transaction_id".to_owned(), "4200000000000000000000000042".to_owned()),
    ]);
    if path.ends_with("/secapi/pay/refund") {
        fields.insert("out_refund_no".to_owned(), echo("out_refund_no"));
        fields.insert("refund_id".to_owned(), "50000000000000000000000042".to_owned());
    }
    let signature = wechat::sign(&fields, &config.key, SignType::HmacSha256);
    fields.insert("sign".to_owned(), signature);
    wechat::to_xml(&fields)
}

fn pay(out_trade_no: &str, fen: i64) -> MicropayRequest {
    MicropayRequest {
        out_trade_no: OutTradeNo::parse(out_trade_no).unwrap(),
        code: SimulatedWallet::new(b"tls", Provider::WeChatPay, 1).issue_code(UnixMillis::now()),
        amount: Money::new(fen, Currency::CNY),
        description: "groceries".into(),
        terminal: LaneId::parse("L1").unwrap(),
    }
}

fn refund(out_trade_no: &str, out_refund_no: &str) -> RefundRequest {
    RefundRequest {
        provider: Provider::WeChatPay,
        out_trade_no: OutTradeNo::parse(out_trade_no).unwrap(),
        out_refund_no: out_refund_no.into(),
        order_amount: Money::new(1_234, Currency::CNY),
        refund_amount: Money::new(234, Currency::CNY),
        reason: "returned".into(),
    }
}

fn wechat_config(base: &str) -> WeChatConfig {
    WeChatConfig { timeout: Duration::from_secs(5), ..sim::wechat_merchant(base) }
}

/// Unreachable, and the reason names `cause` (the server's refusal of a client may read as a reset instead).
fn assert_unreachable<T: std::fmt::Debug>(result: Result<T, ProviderError>, cause: &str) {
    match result {
        Err(ProviderError::Unreachable { provider: Provider::WeChatPay, reason }) => {
            assert!(reason.contains(cause), "{reason:?} does not name {cause:?}");
        }
        other => panic!("expected Unreachable (unknown outcome), got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn https_with_the_extra_root_gets_the_answer_and_an_unknown_ca_leaves_the_outcome_unknown() {
    let pki = TestPki::new("checkout test CA");
    let server = TlsProvider::start(&pki, None).await;

    let trusted = WeChatConfig { extra_root_ca_pem: Some(pki.ca_pem.clone()), ..wechat_config(&server.base) };
    let adapter = WeChatPayV2::new(trusted).unwrap();
    let paid = adapter.micropay(pay("T1-W-1", 1_234)).await.unwrap();
    assert_eq!((paid.status, paid.transaction_id.as_str()), (ChargeStatus::Paid, "4200000000000000000000000042"));
    assert_eq!(server.answered(), 1);

    // The public roots alone do not know the test CA: no answer, so unknown (query, then reverse), never failed.
    let adapter = WeChatPayV2::new(wechat_config(&server.base)).unwrap();
    assert_unreachable(adapter.micropay(pay("T1-W-2", 1_234)).await, "UnknownIssuer");
    // Another CA than the server's is no better.
    let other = TestPki::new("another CA");
    let adapter =
        WeChatPayV2::new(WeChatConfig { extra_root_ca_pem: Some(other.ca_pem.clone()), ..wechat_config(&server.base) })
            .unwrap();
    assert_unreachable(adapter.micropay(pay("T1-W-3", 1_234)).await, "UnknownIssuer");
    assert_eq!(server.answered(), 1, "nothing is sent before the server is trusted");

    // Alipay's adapter takes the same extra root: the handshake succeeds and the (WeChat) answer is
    // then not an Alipay answer; without the root the handshake fails and the outcome is unknown.
    let alipay = |extra: Option<String>| {
        let mut config = sim::alipay_app(&format!("{}/gateway.do", server.base), sim::keys::generated().unwrap());
        config.extra_root_ca_pem = extra;
        config.timeout = Duration::from_secs(5);
        AlipayAdapter::new(config).unwrap()
    };
    let before = server.answered();
    let _ = alipay(Some(pki.ca_pem.clone())).micropay(alipay_pay("T1-A-1")).await;
    assert_eq!(server.answered(), before + 1);
    match alipay(None).micropay(alipay_pay("T1-A-2")).await {
        Err(ProviderError::Unreachable { provider: Provider::Alipay, .. }) => {}
        other => panic!("expected Unreachable, got {other:?}"),
    }
    assert_eq!(server.answered(), before + 1);
}

fn alipay_pay(out_trade_no: &str) -> MicropayRequest {
    MicropayRequest {
        code: SimulatedWallet::new(b"tls", Provider::Alipay, 1).issue_code(UnixMillis::now()),
        ..pay(out_trade_no, 1_234)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_requiring_client_auth_answers_the_merchant_certificate_only() {
    let pki = TestPki::new("checkout test CA");
    let server = TlsProvider::start(&pki, Some(&pki.ca_pem)).await;
    let trusted = WeChatConfig { extra_root_ca_pem: Some(pki.ca_pem.clone()), ..wechat_config(&server.base) };

    let (client_cert_pem, client_key_pem) = pki.identity();
    let with_identity = WeChatConfig { client_cert_pem, client_key_pem, ..trusted.clone() };
    let printed = format!("{with_identity:?}");
    assert!(!printed.contains("PRIVATE KEY") && !printed.contains(&with_identity.key));
    let adapter = WeChatPayV2::new(with_identity).unwrap();
    let paid = adapter.micropay(pay("T2-W-1", 1_234)).await.unwrap();
    assert_eq!(paid.status, ChargeStatus::Paid);
    // secapi/pay/refund, which WeChat Pay serves to the merchant certificate only.
    let refunded = adapter.refund(refund("T2-W-1", "RF-T2-1")).await.unwrap();
    assert_eq!(refunded, RefundAnswer::Accepted { refund_id: "50000000000000000000000042".into() });
    assert_eq!(server.answered(), 2);

    // Without the certificate the server refuses the handshake: unknown, never failed.
    let adapter = WeChatPayV2::new(trusted.clone()).unwrap();
    assert_unreachable(adapter.micropay(pay("T2-W-2", 1_234)).await, "request failed");
    assert_unreachable(adapter.refund(refund("T2-W-1", "RF-T2-2")).await, "request failed");
    // A certificate from another CA is refused the same way.
    let (client_cert_pem, client_key_pem) = TestPki::new("another CA").identity();
    let adapter = WeChatPayV2::new(WeChatConfig { client_cert_pem, client_key_pem, ..trusted }).unwrap();
    assert_unreachable(adapter.micropay(pay("T2-W-3", 1_234)).await, "request failed");
    assert_eq!(server.answered(), 2);
}

#[test]
fn tls_settings_are_checked_when_the_adapter_is_built() {
    let pki = TestPki::new("checkout test CA");
    let base = "https://127.0.0.1:1";
    assert!(WeChatPayV2::new(wechat_config(base)).is_ok());
    assert!(WeChatPayV2::new(wechat_config("ftp://127.0.0.1:1")).is_err());
    let with = |change: fn(&mut WeChatConfig, &TestPki)| {
        let mut config = wechat_config(base);
        change(&mut config, &pki);
        WeChatPayV2::new(config)
    };
    assert!(with(|c, p| c.extra_root_ca_pem = Some(p.ca_pem.clone())).is_ok());
    assert!(with(|c, _| c.extra_root_ca_pem = Some("not a certificate".into())).is_err());
    assert!(with(|c, p| (c.client_cert_pem, c.client_key_pem) = p.identity()).is_ok());
    // Half an identity, or a key in place of a certificate, is a configuration error.
    assert!(with(|c, p| c.client_cert_pem = Some(p.client_cert_pem.clone())).is_err());
    assert!(with(|c, p| c.client_key_pem = Some(p.client_key_pem.clone())).is_err());
    let error = with(|c, p| {
        c.client_cert_pem = Some(p.client_cert_pem.clone());
        c.client_key_pem = Some(p.ca_pem.clone());
    })
    .err()
    .unwrap();
    assert!(!error.to_string().contains("BEGIN"));

    let mut config = sim::alipay_app(&format!("{base}/gateway.do"), sim::keys::generated().unwrap());
    config.extra_root_ca_pem = Some("not a certificate".into());
    assert!(AlipayAdapter::new(config.clone()).is_err());
    config.extra_root_ca_pem = Some(pki.ca_pem.clone());
    assert!(AlipayAdapter::new(config).is_ok());
}
