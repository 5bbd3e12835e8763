//! Real processes for the tests that need them: the `checkout` binary as provider-sim and coordinator, killed at will.

use std::{
    io::{BufRead, BufReader, Read, Write},
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use serde_json::Value;

/// The `checkout` binary cargo built for these tests.
pub const BIN: &str = env!("CARGO_BIN_EXE_checkout");

/// The manager token a `checkout coordinator` process generated in its data folder.
pub fn manager_token(data: &std::path::Path) -> String {
    let path = data.join(checkout_storage::CREDENTIALS_DIR).join(checkout_coordinator::auth::MANAGER_TOKEN_FILE);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display())).trim().to_owned()
}

/// Where a `checkout coordinator` process keeps its lane enrolment secret.
pub fn enrolment_secret_file(data: &std::path::Path) -> std::path::PathBuf {
    data.join(checkout_storage::CREDENTIALS_DIR).join(checkout_coordinator::auth::ENROLMENT_SECRET_FILE)
}

/// A child process that is killed when the test lets go of it.
pub struct Process(pub Child);

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

pub fn wait_for_port(port: u16) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "nothing listens on {port}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Starts `checkout provider-sim` on a free port; returns it and its address.
pub fn provider_sim(seed: &str, extra: &[&str]) -> (Process, String) {
    let mut child = Command::new(BIN)
        .args(["provider-sim", "--listen", "127.0.0.1:0", "--wallet-seed", seed])
        .args(extra)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start provider-sim");
    let address = listening_address(&mut child, "provider-sim");
    (Process(child), address)
}

/// Starts `checkout coordinator` on a free port with its ledger in `data` (its log dropped); returns it and
/// its address.
pub fn coordinator_process(data: &std::path::Path, extra: &[&str]) -> (Process, String) {
    let mut child = Command::new(BIN)
        .args(["coordinator", "--listen", "127.0.0.1:0", "--data"])
        .arg(data)
        .args(extra)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start coordinator");
    let address = listening_address(&mut child, "coordinator");
    (Process(child), address)
}

/// Waits for `child` to exit, at most `within`; `None` if it is still running then.
pub fn wait_for_exit(child: &mut Child, within: Duration) -> Option<std::process::ExitStatus> {
    let deadline = Instant::now() + within;
    loop {
        if let Some(status) = child.try_wait().expect("wait") {
            return Some(status);
        }
        if Instant::now() >= deadline {
            return None;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Sends SIGTERM and waits for the exit, at most `within`.
pub fn terminate(child: &mut Child, within: Duration) -> std::process::ExitStatus {
    let status = Command::new("kill").args(["-TERM", &child.id().to_string()]).status().expect("kill");
    assert!(status.success());
    wait_for_exit(child, within).unwrap_or_else(|| {
        let _ = child.kill();
        panic!("process {} did not stop within {within:?} of SIGTERM", child.id())
    })
}

/// The address a `checkout` server prints on its first line of stdout ("... listening on ADDRESS").
pub fn listening_address(child: &mut Child, server: &str) -> String {
    let mut line = String::new();
    BufReader::new(child.stdout.take().expect("stdout piped")).read_line(&mut line).expect("read address");
    line.trim().strip_prefix(&format!("{server} listening on ")).expect("address line").to_owned()
}

pub fn kill9(process: &mut Process) {
    let _ = process.0.kill(); // SIGKILL
    let _ = process.0.wait();
}

/// GET or POST on the simulator's administration API.
pub fn sim_http(address: &str, method: &str, path: &str, body: &str) -> Value {
    let mut stream = std::net::TcpStream::connect(address).unwrap();
    write!(
        stream,
        "{method} {path} HTTP/1.1\r\nHost: {address}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    let (_, json) = response.split_once("\r\n\r\n").expect("an HTTP answer");
    serde_json::from_str(json).unwrap_or_else(|e| panic!("{e}: {json}"))
}
