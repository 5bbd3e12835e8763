//! A small blocking WebDriver client for tests that drive pages in a real headless Chromium (via chromedriver).
//!
//! It speaks chromedriver's W3C WebDriver HTTP protocol directly (HTTP/1.1, one `Connection: close`
//! request per command), starts Debian's `chromium` with the flags this closed, root-run machine needs and a
//! fresh profile per browser, and never downloads anything. Every call returns `Result<_, String>` naming the
//! command that failed, so tests can simply `.expect()`.

use std::{
    io::{BufRead, BufReader, Read, Write},
    net::{TcpListener, TcpStream},
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use base64::Engine as _;
use serde_json::{Value, json};

/// Special keys for [`Browser::press_keys`] (W3C WebDriver code points in the Unicode private use area).
pub const BACKSPACE: &str = "\u{E003}";
pub const TAB: &str = "\u{E004}";
pub const ENTER: &str = "\u{E007}";
pub const SHIFT: &str = "\u{E008}";
pub const CONTROL: &str = "\u{E009}";
pub const ESCAPE: &str = "\u{E00C}";
pub const ARROW_UP: &str = "\u{E013}";
pub const ARROW_DOWN: &str = "\u{E015}";
pub const DELETE: &str = "\u{E017}";
/// `F1`..`F12` are `\u{E031}`..`\u{E03C}`.
pub const F1: &str = "\u{E031}";
pub const F2: &str = "\u{E032}";
pub const F3: &str = "\u{E033}";
pub const F4: &str = "\u{E034}";
pub const F12: &str = "\u{E03C}";

/// The flags without which Chromium's connections are refused on this machine (root, closed network).
pub const CHROMIUM_FLAGS: [&str; 8] = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
];

/// The key under which WebDriver returns an element reference.
const ELEMENT_KEY: &str = "element-6066-11e4-a52e-4f735466cecf";
/// The longest any one WebDriver command may take (a page load included).
const COMMAND_TIMEOUT: Duration = Duration::from_secs(60);

/// A chromedriver process with one Chromium session; dropping it ends both and removes the profile.
pub struct Browser {
    port: u16,
    session: String,
    driver: Child,
    /// Chromium's `--user-data-dir` and chromedriver's log; removed last.
    dir: tempfile::TempDir,
}

impl Browser {
    /// Starts chromedriver (`CHROMEDRIVER`, else /usr/bin/chromedriver) on a free port and a 1024x768 headless
    /// Chromium (`CHROMIUM`, else /usr/bin/chromium) in a fresh temporary profile.
    pub fn start() -> Result<Browser, String> {
        let driver_bin = executable("CHROMEDRIVER", "/usr/bin/chromedriver")?;
        let chromium_bin = executable("CHROMIUM", "/usr/bin/chromium")?;
        let dir = tempfile::tempdir().map_err(|e| format!("temporary browser folder: {e}"))?;
        let profile = dir.path().join("profile");
        let log = dir.path().join("chromedriver.log");
        let (driver, port) = spawn_driver(&driver_bin, &log)?;
        let mut browser = Browser { port, session: String::new(), driver, dir };
        let mut args: Vec<String> = CHROMIUM_FLAGS.iter().map(|f| f.to_string()).collect();
        args.push(format!("--user-data-dir={}", profile.display()));
        args.push("--window-size=1024,768".into());
        let capabilities = json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "timeouts": {"pageLoad": 30_000, "script": 30_000},
            "goog:chromeOptions": {"binary": chromium_bin, "args": args},
        }}});
        let created = browser.http("POST", "/session", Some(&capabilities)).map_err(|e| {
            let log = std::fs::read_to_string(&log).unwrap_or_default();
            let lines: Vec<&str> = log.lines().collect();
            format!("{e}\nchromedriver log (last lines):\n{}", lines[lines.len().saturating_sub(20)..].join("\n"))
        })?;
        browser.session = created["sessionId"].as_str().ok_or(format!("no sessionId in {created}"))?.to_owned();
        Ok(browser)
    }

    /// Navigates to `url` and waits for it to load.
    pub fn open(&self, url: &str) -> Result<(), String> {
        self.cmd("POST", "/url", json!({"url": url})).map(drop)
    }

    /// Resizes the window (outer size: in headless Chromium the viewport is shorter than `height`).
    pub fn set_window_size(&self, width: u32, height: u32) -> Result<(), String> {
        self.cmd("POST", "/window/rect", json!({"width": width, "height": height})).map(drop)
    }

    /// Runs `js_body` as a function body (use `return ...`) and gives back its result.
    pub fn eval(&self, js_body: &str) -> Result<Value, String> {
        self.cmd("POST", "/execute/sync", json!({"script": js_body, "args": []}))
    }

    /// The visible text of the first element matching `css`.
    pub fn text(&self, css: &str) -> Result<String, String> {
        self.element_text(&self.find(css)?)
    }

    /// The visible texts of all elements matching `css`, in document order.
    pub fn texts(&self, css: &str) -> Result<Vec<String>, String> {
        self.find_all(css)?.iter().map(|id| self.element_text(id)).collect()
    }

    /// How many elements match `css`.
    pub fn count(&self, css: &str) -> Result<usize, String> {
        Ok(self.find_all(css)?.len())
    }

    /// Clicks the first element matching `css` (scrolled into view, as a user would).
    pub fn click(&self, css: &str) -> Result<(), String> {
        let id = self.find(css)?;
        self.cmd("POST", &format!("/element/{id}/click"), json!({}))
            .map(drop)
            .map_err(|e| format!("click `{css}`: {e}"))
    }

    /// Focuses the first element matching `css` and types `text` into it (special keys such as [`ENTER`] allowed).
    pub fn type_into(&self, css: &str, text: &str) -> Result<(), String> {
        let id = self.find(css)?;
        let body = json!({"text": text});
        self.cmd("POST", &format!("/element/{id}/value"), body).map(drop).map_err(|e| format!("type into `{css}`: {e}"))
    }

    /// Presses and releases each key of `keys` in turn on whatever has focus (e.g. `&format!("ab{ENTER}{F2}")`).
    pub fn press_keys(&self, keys: &str) -> Result<(), String> {
        let actions: Vec<Value> = keys
            .chars()
            .flat_map(|c| {
                [json!({"type": "keyDown", "value": c.to_string()}), json!({"type": "keyUp", "value": c.to_string()})]
            })
            .collect();
        let body = json!({"actions": [{"type": "key", "id": "keyboard", "actions": actions}]});
        self.cmd("POST", "/actions", body).map(drop).map_err(|e| format!("press keys {keys:?}: {e}"))
    }

    /// Polls `js_predicate` every 50 ms until it is truthy: a JS expression (`x > 0`) or a function body that
    /// returns one (`return x > 0`). On timeout the error names `what` and shows the page's text (and the
    /// predicate's last error, if it threw), so failures explain themselves.
    pub fn wait_for(&self, what: &str, js_predicate: &str, timeout: Duration) -> Result<(), String> {
        let started = Instant::now();
        let is_body = js_predicate
            .trim_start()
            .strip_prefix("return")
            .is_some_and(|rest| !rest.starts_with(|c: char| c.is_alphanumeric() || c == '_' || c == '$'));
        let script = if is_body {
            format!("return !!(() => {{ {js_predicate}\n}})();")
        } else {
            format!("return !!({js_predicate}\n);")
        };
        loop {
            let last = match self.eval(&script) {
                Ok(Value::Bool(true)) => return Ok(()),
                Ok(_) => String::new(),
                Err(e) => format!("\nlast error: {e}"),
            };
            if started.elapsed() > timeout {
                let page = self.eval("return document.body ? document.body.innerText : ''").unwrap_or_default();
                let page = clip(page.as_str().unwrap_or_default(), 2048);
                return Err(format!(
                    "timed out after {timeout:?} waiting for {what} ({js_predicate}){last}\npage text:\n{page}"
                ));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// A PNG of the viewport.
    pub fn screenshot_png(&self) -> Result<Vec<u8>, String> {
        let encoded = self.cmd("GET", "/screenshot", Value::Null)?;
        let encoded = encoded.as_str().ok_or(format!("screenshot is not a string: {encoded}"))?;
        base64::engine::general_purpose::STANDARD.decode(encoded).map_err(|e| format!("screenshot base64: {e}"))
    }

    /// Writes a PNG of the viewport to `path` (handy to keep from a failing test).
    pub fn save_screenshot(&self, path: &Path) -> Result<(), String> {
        std::fs::write(path, self.screenshot_png()?).map_err(|e| format!("write {}: {e}", path.display()))
    }

    /// Opens a new tab (without switching to it) and gives back its window handle.
    pub fn new_tab(&self) -> Result<String, String> {
        let tab = self.cmd("POST", "/window/new", json!({"type": "tab"}))?;
        tab["handle"].as_str().map(str::to_owned).ok_or(format!("no handle in {tab}"))
    }

    /// Makes the window (tab) `handle` the one later commands drive.
    pub fn switch_to(&self, handle: &str) -> Result<(), String> {
        self.cmd("POST", "/window", json!({"handle": handle})).map(drop)
    }

    /// The handle of the window (tab) commands currently drive.
    pub fn current_handle(&self) -> Result<String, String> {
        let handle = self.cmd("GET", "/window", Value::Null)?;
        handle.as_str().map(str::to_owned).ok_or(format!("window handle is not a string: {handle}"))
    }

    fn find(&self, css: &str) -> Result<String, String> {
        let found = self.cmd("POST", "/element", json!({"using": "css selector", "value": css}));
        element_id(&found.map_err(|e| format!("find `{css}`: {e}"))?)
    }

    fn find_all(&self, css: &str) -> Result<Vec<String>, String> {
        let found = self.cmd("POST", "/elements", json!({"using": "css selector", "value": css}));
        let found = found.map_err(|e| format!("find all `{css}`: {e}"))?;
        found.as_array().ok_or(format!("elements are not a list: {found}"))?.iter().map(element_id).collect()
    }

    fn element_text(&self, id: &str) -> Result<String, String> {
        let text = self.cmd("GET", &format!("/element/{id}/text"), Value::Null)?;
        text.as_str().map(str::to_owned).ok_or(format!("element text is not a string: {text}"))
    }

    /// A command of this session (`path` after `/session/{id}`); `Value::Null` sends no body.
    fn cmd(&self, method: &str, path: &str, body: Value) -> Result<Value, String> {
        let body = if body.is_null() { None } else { Some(&body) };
        self.http(method, &format!("/session/{}{path}", self.session), body)
    }

    fn http(&self, method: &str, path: &str, body: Option<&Value>) -> Result<Value, String> {
        http(self.port, method, path, body, COMMAND_TIMEOUT)
    }
}

impl Drop for Browser {
    /// Quits Chromium (deleting the session waits for it), kills and reaps chromedriver; the profile goes last.
    fn drop(&mut self) {
        if !self.session.is_empty() {
            let _ = http(self.port, "DELETE", &format!("/session/{}", self.session), None, Duration::from_secs(10));
        }
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}

/// Spawns chromedriver on a free port and waits (up to 10 s) until `/status` says it is ready. Picking the
/// port (bind to 0, let go) can race another process, so a driver that exits early is tried again, twice.
fn spawn_driver(bin: &Path, log: &Path) -> Result<(Child, u16), String> {
    let mut failure = String::new();
    for _ in 0..3 {
        let listener = TcpListener::bind("127.0.0.1:0").map_err(|e| format!("pick a free port: {e}"))?;
        let port = listener.local_addr().map_err(|e| format!("pick a free port: {e}"))?.port();
        drop(listener);
        let mut driver = Command::new(bin)
            .arg(format!("--port={port}"))
            .arg(format!("--log-path={}", log.display()))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| format!("spawn {}: {e}", bin.display()))?;
        let started = Instant::now();
        failure = loop {
            if let Ok(Some(status)) = driver.try_wait() {
                break format!("chromedriver exited before it was ready ({status}) on port {port}");
            }
            match http(port, "GET", "/status", None, Duration::from_secs(1)) {
                Ok(status) if status["ready"] == true => return Ok((driver, port)),
                _ if started.elapsed() > Duration::from_secs(10) => {
                    let _ = driver.kill();
                    let _ = driver.wait();
                    return Err(format!("chromedriver on port {port} not ready after 10 s"));
                }
                _ => std::thread::sleep(Duration::from_millis(50)),
            }
        };
    }
    Err(failure)
}

/// One HTTP/1.1 request to chromedriver on `port` (answered within `timeout`); the response's `value`, or its
/// WebDriver error.
fn http(port: u16, method: &str, path: &str, body: Option<&Value>, timeout: Duration) -> Result<Value, String> {
    let context = |e: &dyn std::fmt::Display| format!("WebDriver {method} {path}: {e}");
    let mut stream = TcpStream::connect(("127.0.0.1", port)).map_err(|e| context(&e))?;
    stream.set_read_timeout(Some(timeout)).map_err(|e| context(&e))?;
    let body = body.map(Value::to_string).unwrap_or_default();
    let request = format!(
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n\
         Content-Type: application/json; charset=utf-8\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(request.as_bytes()).map_err(|e| context(&e))?;
    let (status, json) = read_response(stream).map_err(|e| context(&e))?;
    let parsed: Value =
        serde_json::from_str(&json).map_err(|e| context(&format!("HTTP {status}, {e}: {}", clip(&json, 512))))?;
    let value = parsed.get("value").cloned().unwrap_or(Value::Null);
    if status.starts_with('2') {
        Ok(value)
    } else {
        Err(context(&format!("HTTP {status}, {}: {}", value["error"], value["message"])))
    }
}

/// The status code and body of one HTTP/1.1 response. chromedriver answers `Connection: close` with that header
/// but keeps the socket open, so the body is read by its Content-Length, never to the end of the stream.
fn read_response(stream: TcpStream) -> Result<(String, String), String> {
    let mut reader = BufReader::new(stream);
    let mut line = String::new();
    reader.read_line(&mut line).map_err(|e| e.to_string())?;
    let status = line.split_whitespace().nth(1).ok_or(format!("no HTTP status line: {line:?}"))?.to_owned();
    let mut len = None;
    loop {
        line.clear();
        if reader.read_line(&mut line).map_err(|e| e.to_string())? == 0 || line.trim().is_empty() {
            break;
        }
        if let Some((name, value)) = line.split_once(':')
            && name.eq_ignore_ascii_case("content-length")
        {
            len = Some(value.trim().parse::<usize>().map_err(|e| format!("Content-Length: {e}"))?);
        }
    }
    let mut body = vec![0; len.ok_or("response without Content-Length")?];
    reader.read_exact(&mut body).map_err(|e| format!("body: {e}"))?;
    Ok((status, String::from_utf8_lossy(&body).into_owned()))
}

/// `$env_var`, else `default`, if that file exists.
fn executable(env_var: &str, default: &str) -> Result<PathBuf, String> {
    let path = PathBuf::from(std::env::var_os(env_var).unwrap_or_else(|| default.into()));
    if path.is_file() {
        Ok(path)
    } else {
        Err(format!("{} not found (set {env_var}, or install chromium and chromium-driver (apt))", path.display()))
    }
}

fn element_id(found: &Value) -> Result<String, String> {
    found[ELEMENT_KEY].as_str().map(str::to_owned).ok_or(format!("not an element: {found}"))
}

/// At most `max` characters of `text`, marked when cut.
fn clip(text: &str, max: usize) -> String {
    let mut chars = text.chars();
    let kept: String = chars.by_ref().take(max).collect();
    if chars.next().is_some() { format!("{kept}… (cut)") } else { kept }
}
