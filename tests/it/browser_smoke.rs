//! Proves the WebDriver client (common::browser) against a real headless Chromium: a tiny page served from a
//! std thread, clicked, typed into, keys pressed, waited on, photographed, and opened again in a second tab.

use crate::common;

use std::{
    io::{Read, Write},
    net::TcpListener,
    time::{Duration, Instant},
};

use common::browser::{Browser, ENTER, F2};

/// Long enough for a loaded 2-core machine; the page answers in milliseconds.
const WAIT: Duration = Duration::from_secs(5);

/// A button that counts its clicks, an input, and a list of every key pressed anywhere on the page.
const PAGE: &str = r#"<!doctype html>
<html><head><meta charset="utf-8"><title>smoke</title></head>
<body>
  <h1>Lane smoke</h1>
  <button id="add">Add</button> <span id="count">0</span>
  <input id="name">
  <ol id="keys"></ol>
  <script>
    let clicks = 0;
    document.getElementById('add').addEventListener('click', () => {
      document.getElementById('count').textContent = String(++clicks);
    });
    document.addEventListener('keydown', (e) => {
      const li = document.createElement('li');
      li.textContent = e.key;
      document.getElementById('keys').appendChild(li);
    });
  </script>
</body></html>"#;

/// Serves `PAGE` at `/` (404 elsewhere) on 127.0.0.1:0 for the rest of the test binary's life; its base URL.
/// One thread per connection: Chromium opens speculative connections that may never send a request.
fn serve_page() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind the page server");
    let url = format!("http://{}/", listener.local_addr().expect("page server address"));
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            std::thread::spawn(move || {
                let mut stream = stream;
                let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
                let mut request = Vec::new();
                let mut buffer = [0u8; 1024];
                while !request.windows(4).any(|w| w == b"\r\n\r\n") {
                    match stream.read(&mut buffer) {
                        Ok(0) | Err(_) => return,
                        Ok(n) => request.extend_from_slice(&buffer[..n]),
                    }
                }
                let found = request.starts_with(b"GET / ");
                let (status, body) = if found { ("200 OK", PAGE) } else { ("404 Not Found", "not found") };
                let response = format!(
                    "HTTP/1.1 {status}\r\nContent-Type: text/html; charset=utf-8\r\nContent-Length: {}\r\n\
                     Connection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = stream.write_all(response.as_bytes());
            });
        }
    });
    url
}

/// The width and height in a PNG's IHDR chunk (right after the 8-byte signature and the chunk's length and type).
fn png_size(png: &[u8]) -> (u32, u32) {
    assert!(png.len() > 24, "a PNG of {} bytes", png.len());
    assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n", "PNG signature");
    assert_eq!(&png[12..16], b"IHDR", "IHDR first");
    let be = |at: usize| u32::from_be_bytes([png[at], png[at + 1], png[at + 2], png[at + 3]]);
    (be(16), be(20))
}

#[test]
fn browser_smoke() {
    let started = Instant::now();
    let url = serve_page();
    let browser = Browser::start().expect("start chromedriver and Chromium");
    browser.open(&url).expect("open the page");
    assert_eq!(browser.text("h1").expect("heading"), "Lane smoke");
    assert_eq!(browser.eval("return document.title").expect("title"), "smoke");

    browser.click("#add").expect("click once");
    browser.click("#add").expect("click twice");
    browser
        .wait_for("the counter at 2", "document.getElementById('count').textContent === '2'", WAIT)
        .expect("counter");
    assert_eq!(browser.text("#count").expect("count"), "2");
    browser
        .wait_for("the counter, as a body", "return document.getElementById('count').textContent === '2'", WAIT)
        .expect("a predicate written as a function body");

    browser.type_into("#name", "ann").expect("type a name");
    browser.press_keys(&format!("{ENTER}{F2}")).expect("press Enter and F2");
    browser.wait_for("five keys recorded", "document.querySelectorAll('#keys li').length >= 5", WAIT).expect("keys");
    assert_eq!(browser.texts("#keys li").expect("keys"), ["a", "n", "n", "Enter", "F2"]);
    assert_eq!(browser.eval("return document.getElementById('name').value").expect("input value"), "ann");
    assert_eq!(browser.count("#keys li").expect("count keys"), 5);
    assert_eq!(browser.count("#missing").expect("count nothing"), 0);
    assert!(browser.click("#missing").expect_err("no such element").contains("#missing"));

    // A failed wait says what it waited for and what the page showed.
    let error = browser.wait_for("the impossible", "false", Duration::from_millis(150)).expect_err("times out");
    assert!(error.contains("the impossible") && error.contains("Lane smoke"), "{error}");

    let png = browser.screenshot_png().expect("screenshot");
    let (width, height) = png_size(&png);
    assert_eq!(width, 1024, "viewport width (height {height})");
    let dir = tempfile::tempdir().expect("temporary folder");
    let saved = dir.path().join("smoke.png");
    browser.save_screenshot(&saved).expect("save screenshot");
    assert_eq!(png_size(&std::fs::read(&saved).expect("read screenshot")).0, 1024);

    let first = browser.current_handle().expect("first tab");
    let second = browser.new_tab().expect("new tab");
    assert_ne!(first, second);
    browser.switch_to(&second).expect("switch to the new tab");
    browser.open(&url).expect("open the page again");
    assert_eq!(browser.text("#count").expect("fresh count"), "0");
    assert_eq!(browser.current_handle().expect("second tab"), second);
    browser.switch_to(&first).expect("switch back");
    assert_eq!(browser.text("#count").expect("first tab's count"), "2");

    drop(browser);
    // Usually well under 3 s; not asserted, so a busy machine does not fail it.
    eprintln!("browser smoke test: {:?}", started.elapsed());
}
