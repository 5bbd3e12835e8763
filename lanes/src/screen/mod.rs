//! The lane's screens, served by the lane itself with actix-web: the cashier's screen (`/cashier`) and the
//! customer display (`/customer`), live over server-sent events. The till is the one truth: it publishes its
//! state after every change, every open page gets the same state, and a cashier's action is a message to
//! the till, shown once the till has applied it.
//!
//! Only the cashier's page may act: its address carries the lane's screen key (`/cashier#key=...`), which
//! every action and the cashier's event stream must present. The customer display needs no key and gets
//! [`state::CustomerView`] only: no payment code, no cashier, no controls.

pub mod state;

use std::{
    fmt,
    net::TcpListener,
    sync::{
        Arc, Mutex,
        atomic::{AtomicUsize, Ordering},
    },
    time::Duration,
};

use actix::Addr;
use actix_web::{
    App, HttpRequest, HttpResponse, HttpServer,
    dev::ServerHandle,
    http::header,
    web::{self, Bytes},
};
use tokio::sync::watch;

use self::state::{CustomerView, ScreenState};
use crate::{
    actors::till::Till,
    messages::{CashierAction, CashierCommand},
};

/// The language of the screens' labels.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Lang {
    /// 中文
    #[default]
    Zh,
    /// English
    En,
}

impl Lang {
    /// "zh" or "en".
    pub fn parse(text: &str) -> Option<Lang> {
        match text {
            "zh" => Some(Lang::Zh),
            "en" => Some(Lang::En),
            _ => None,
        }
    }

    fn code(self) -> &'static str {
        match self {
            Lang::Zh => "zh",
            Lang::En => "en",
        }
    }
}

/// The secret in the cashier's page address: 128 random bits in hex.
#[derive(Clone, PartialEq, Eq)]
pub struct ScreenKey(String);

impl ScreenKey {
    /// A new key from the system's random source.
    pub fn random() -> std::io::Result<ScreenKey> {
        Ok(ScreenKey(crate::register::hex(&crate::register::random_bytes::<16>()?)))
    }

    /// A key as kept (32 hex digits); `None` for anything else.
    pub fn parse(text: &str) -> Option<ScreenKey> {
        (text.len() == 32 && text.bytes().all(|b| b.is_ascii_hexdigit())).then(|| ScreenKey(text.to_ascii_lowercase()))
    }

    /// The key as it goes in the cashier's address.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// Compares in time independent of where the first difference is.
    fn matches(&self, presented: &str) -> bool {
        let (a, b) = (self.0.as_bytes(), presented.as_bytes());
        a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
    }
}

impl fmt::Debug for ScreenKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ScreenKey(..)")
    }
}

/// The socket the screens are served on, bound by the caller (so a test can bind port 0 and read it back).
#[derive(Clone)]
pub struct ScreenListener {
    socket: Arc<Mutex<Option<TcpListener>>>,
    address: Option<std::net::SocketAddr>,
}

impl ScreenListener {
    /// Binds `address` ("127.0.0.1:8080").
    pub fn bind(address: &str) -> std::io::Result<ScreenListener> {
        Ok(ScreenListener::from(TcpListener::bind(address)?))
    }

    /// Where it listens.
    pub fn local_addr(&self) -> Option<std::net::SocketAddr> {
        self.address
    }

    fn take(&self) -> Option<TcpListener> {
        self.socket.lock().ok()?.take()
    }
}

impl From<TcpListener> for ScreenListener {
    fn from(listener: TcpListener) -> ScreenListener {
        let address = listener.local_addr().ok();
        ScreenListener { socket: Arc::new(Mutex::new(Some(listener))), address }
    }
}

impl fmt::Debug for ScreenListener {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ScreenListener({:?})", self.address)
    }
}

/// The lane's screens: where, in what language, with what key, and the cashier's limits.
#[derive(Debug, Clone)]
pub struct ScreenConfig {
    pub listener: ScreenListener,
    pub lang: Lang,
    pub key: ScreenKey,
    /// Charges above this many minor units wait for the cashier to confirm the amount.
    pub confirm_above: Option<i64>,
    /// The most an open-price item may be typed at, in minor units.
    pub open_price_cap: i64,
}

impl ScreenConfig {
    /// Screens on `listener` with a new random key, Chinese labels, no confirmation threshold and the default
    /// open-price cap.
    pub fn new(listener: ScreenListener) -> std::io::Result<ScreenConfig> {
        Ok(ScreenConfig {
            listener,
            lang: Lang::default(),
            key: ScreenKey::random()?,
            confirm_above: None,
            open_price_cap: crate::actors::till::OPEN_PRICE_CAP_DEFAULT,
        })
    }

    /// The cashier's page, for a browser on this machine.
    pub fn cashier_url(&self) -> Option<String> {
        Some(format!("http://{}/cashier#key={}", self.listener.local_addr()?, self.key.expose()))
    }

    /// The customer display's page.
    pub fn customer_url(&self) -> Option<String> {
        Some(format!("http://{}/customer", self.listener.local_addr()?))
    }
}

/// Open event streams at most, of the customer display and of the cashier's screen (every tab): a page that
/// opens streams in a loop cannot take the lane's memory, and customer pages cannot lock the cashier out.
const MAX_CUSTOMER_STREAMS: usize = 24;
const MAX_CASHIER_STREAMS: usize = 8;
/// How long an action's body may take to arrive.
const ACTION_BODY_TIMEOUT: Duration = Duration::from_secs(2);
/// A comment on idle streams so proxies and browsers keep them open.
const KEEP_ALIVE: Duration = Duration::from_secs(15);
/// The largest action a page may send.
const MAX_ACTION_BYTES: usize = 4 * 1024;

struct Shared {
    /// On loopback, the `Host` names a page may use (a page of another site that resolves its own name to
    /// 127.0.0.1, DNS rebinding, is refused); `None` when the screens are served to the network.
    local_hosts: Option<Vec<String>>,
    till: Addr<Till>,
    state: watch::Receiver<ScreenState>,
    key: ScreenKey,
    customer_streams: Arc<AtomicUsize>,
    cashier_streams: Arc<AtomicUsize>,
    cashier_page: String,
    customer_page: String,
}

/// Starts serving the screens on the current actix system; the handle stops them.
pub(crate) fn serve(
    config: &ScreenConfig,
    till: Addr<Till>,
    state: watch::Receiver<ScreenState>,
) -> std::io::Result<ServerHandle> {
    let listener = config
        .listener
        .take()
        .ok_or_else(|| std::io::Error::new(std::io::ErrorKind::AddrInUse, "the screen's socket is in use"))?;
    let page = |html: &str| html.replace("{{lang}}", config.lang.code());
    let local_hosts = listener.local_addr().ok().filter(|a| a.ip().is_loopback()).map(|a| {
        let port = a.port();
        vec![format!("127.0.0.1:{port}"), format!("localhost:{port}"), format!("[::1]:{port}")]
    });
    let shared = web::Data::new(Shared {
        local_hosts,
        till,
        state,
        key: config.key.clone(),
        customer_streams: Arc::new(AtomicUsize::new(0)),
        cashier_streams: Arc::new(AtomicUsize::new(0)),
        cashier_page: page(include_str!("pages/cashier.html")),
        customer_page: page(include_str!("pages/customer.html")),
    });
    let server = HttpServer::new(move || {
        App::new()
            .app_data(shared.clone())
            .route("/", web::get().to(|| async { redirect("/customer") }))
            .route(
                "/cashier",
                web::get()
                    .to(|r: HttpRequest, s: web::Data<Shared>| async move { serve_page(&r, &s, &s.cashier_page) }),
            )
            .route(
                "/customer",
                web::get()
                    .to(|r: HttpRequest, s: web::Data<Shared>| async move { serve_page(&r, &s, &s.customer_page) }),
            )
            .route("/screen.css", web::get().to(|| async { asset("text/css", include_str!("pages/screen.css")) }))
            .route("/screen.js", web::get().to(|| async { asset("text/javascript", include_str!("pages/screen.js")) }))
            .route("/events/cashier", web::get().to(cashier_events))
            .route("/events/customer", web::get().to(customer_events))
            .route("/action", web::post().to(action))
    })
    .workers(1)
    .disable_signals()
    .max_connections(64)
    .client_request_timeout(Duration::from_secs(5))
    .shutdown_timeout(1)
    .listen(listener)?
    .run();
    let handle = server.handle();
    actix_rt::spawn(server);
    Ok(handle)
}

fn with_safety_headers(mut response: actix_web::HttpResponseBuilder) -> actix_web::HttpResponseBuilder {
    response
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .insert_header((header::X_FRAME_OPTIONS, "DENY"))
        .insert_header((header::X_CONTENT_TYPE_OPTIONS, "nosniff"))
        .insert_header((header::REFERRER_POLICY, "no-referrer"))
        .insert_header((
            header::CONTENT_SECURITY_POLICY,
            "default-src 'self'; style-src 'self'; script-src 'self'; frame-ancestors 'none'",
        ));
    response
}

/// A page, to a request that names this lane's host.
fn serve_page(request: &HttpRequest, shared: &Shared, page: &str) -> HttpResponse {
    refused_host(request, shared).unwrap_or_else(|| html(page))
}

/// `None` when the request's `Host` is one of this lane's (always, when served to the network).
fn refused_host(request: &HttpRequest, shared: &Shared) -> Option<HttpResponse> {
    let allowed = shared.local_hosts.as_ref()?;
    let host = request.headers().get(header::HOST).and_then(|h| h.to_str().ok()).unwrap_or_default();
    if allowed.iter().any(|a| a.eq_ignore_ascii_case(host)) {
        return None;
    }
    Some(problem(HttpResponse::Forbidden(), "not this lane's address"))
}

fn html(page: &str) -> HttpResponse {
    with_safety_headers(HttpResponse::Ok()).content_type("text/html; charset=utf-8").body(page.to_owned())
}

fn asset(content_type: &'static str, body: &'static str) -> HttpResponse {
    with_safety_headers(HttpResponse::Ok()).content_type(format!("{content_type}; charset=utf-8")).body(body)
}

fn redirect(to: &'static str) -> HttpResponse {
    HttpResponse::Found().insert_header((header::LOCATION, to)).finish()
}

fn problem(mut status: actix_web::HttpResponseBuilder, message: &str) -> HttpResponse {
    status.json(serde_json::json!({ "error": message }))
}

/// The key a request presents: the `X-Screen-Key` header, or `key` in the query (an event stream cannot
/// send headers).
fn presented_key(request: &HttpRequest) -> Option<String> {
    if let Some(value) = request.headers().get("x-screen-key") {
        return value.to_str().ok().map(str::to_owned);
    }
    web::Query::<std::collections::HashMap<String, String>>::from_query(request.query_string())
        .ok()?
        .get("key")
        .cloned()
}

/// `None` when the request presents the cashier's key; the refusal otherwise.
fn refused_without_key(request: &HttpRequest, shared: &Shared) -> Option<HttpResponse> {
    match presented_key(request) {
        Some(key) if shared.key.matches(&key) => None,
        _ => Some(problem(HttpResponse::Unauthorized(), "the cashier's screen key is missing or wrong")),
    }
}

async fn cashier_events(request: HttpRequest, shared: web::Data<Shared>) -> HttpResponse {
    if let Some(refused) = refused_host(&request, &shared).or_else(|| refused_without_key(&request, &shared)) {
        return refused;
    }
    events(&shared, &shared.cashier_streams, MAX_CASHIER_STREAMS, serde_json::to_string)
}

async fn customer_events(request: HttpRequest, shared: web::Data<Shared>) -> HttpResponse {
    if let Some(refused) = refused_host(&request, &shared) {
        return refused;
    }
    events(&shared, &shared.customer_streams, MAX_CUSTOMER_STREAMS, |state| {
        serde_json::to_string(&CustomerView::of(state))
    })
}

/// Counts an open stream until it is dropped.
struct StreamSlot(Arc<AtomicUsize>);

impl Drop for StreamSlot {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

/// A stream of the till's state, each one a `data:` line of JSON made by `view`: the current state at once,
/// then every change (states published meanwhile are skipped: each is whole).
fn events(
    shared: &Shared,
    open: &Arc<AtomicUsize>,
    most: usize,
    view: fn(&ScreenState) -> Result<String, serde_json::Error>,
) -> HttpResponse {
    if open.fetch_add(1, Ordering::AcqRel) >= most {
        open.fetch_sub(1, Ordering::AcqRel);
        return problem(HttpResponse::ServiceUnavailable(), "too many screens are open on this lane");
    }
    let slot = StreamSlot(open.clone());
    let mut receiver = shared.state.clone();
    receiver.mark_changed();
    let stream = futures::stream::unfold((receiver, slot), move |(mut receiver, slot)| async move {
        let chunk = match tokio::time::timeout(KEEP_ALIVE, receiver.changed()).await {
            Ok(Ok(())) => {
                let json = view(&receiver.borrow_and_update()).unwrap_or_else(|_| "{}".to_owned());
                Bytes::from(format!("data: {json}\n\n"))
            }
            // The lane stopped: the stream ends.
            Ok(Err(_)) => return None,
            Err(_) => Bytes::from_static(b": still here\n\n"),
        };
        Some((Ok::<_, actix_web::Error>(chunk), (receiver, slot)))
    });
    with_safety_headers(HttpResponse::Ok())
        .content_type("text/event-stream")
        .insert_header(("X-Accel-Buffering", "no"))
        .streaming(stream)
}

async fn action(request: HttpRequest, body: web::Payload, shared: web::Data<Shared>) -> HttpResponse {
    // The key before the body: a request without it is not read any further.
    if let Some(refused) = refused_host(&request, &shared).or_else(|| refused_without_key(&request, &shared)) {
        return refused;
    }
    let body = match tokio::time::timeout(ACTION_BODY_TIMEOUT, body.to_bytes_limited(MAX_ACTION_BYTES)).await {
        Ok(Ok(Ok(body))) => body,
        Ok(Ok(Err(_))) | Ok(Err(_)) => return problem(HttpResponse::BadRequest(), "not an action: unreadable"),
        Err(_) => return problem(HttpResponse::RequestTimeout(), "the action took too long to arrive"),
    };
    // serde's message may quote what was typed (a payment code a scanner typed): never echoed.
    let Ok(action) = serde_json::from_slice::<CashierAction>(&body) else {
        return problem(HttpResponse::BadRequest(), "not an action this screen knows");
    };
    match shared.till.send(CashierCommand(action)).await {
        Ok(Ok(())) => HttpResponse::Ok().json(serde_json::json!({ "ok": true })),
        Ok(Err(refused)) => problem(HttpResponse::Conflict(), &refused.0),
        Err(_) => problem(HttpResponse::ServiceUnavailable(), "the lane is stopping"),
    }
}
