//! Another gRPC implementation as the manager's tool: Python's grpcio (gRPC C-core) learns the API
//! from server reflection alone, as grpcurl does, and reads totals and shifts after a lane's run.

use crate::common;

use std::process::{Command, Stdio};

use common::processes::{BIN, coordinator_process, enrolment_secret_file, manager_token, terminate};
use serde_json::Value;

fn python_grpc_available() -> bool {
    Command::new("python3")
        .args(["-c", "import grpc, grpc_reflection"])
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

#[test]
fn a_reflection_only_client_reads_totals_and_shifts_and_gets_clear_errors() {
    if !python_grpc_available() {
        eprintln!(
            "SKIPPED: python3 with grpcio and grpcio-reflection is not installed (pip install grpcio grpcio-reflection)"
        );
        return;
    }
    let data = tempfile::tempdir().unwrap();
    let lane_data = tempfile::tempdir().unwrap();
    let (mut coordinator, address) = coordinator_process(data.path(), &["--wallet-seed", "real client"]);

    let lane = Command::new(BIN)
        .args(["lane", "--id", "L2", "--coordinator", &format!("http://{address}"), "--synthetic"])
        .args(["--customers", "2", "--fps", "120", "--wallet-seed", "real client", "--cashier", "bo", "--data"])
        .arg(lane_data.path())
        .arg("--enrolment-secret")
        .arg(enrolment_secret_file(data.path()))
        .output()
        .expect("run lane");
    assert!(lane.status.success(), "{}", String::from_utf8_lossy(&lane.stdout));

    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/clients/reflection_client.py");
    let output = Command::new("python3")
        .arg(script)
        .arg(&address)
        .arg(manager_token(data.path()))
        .output()
        .expect("run the Python client");
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let answer: Value = serde_json::from_slice(&output.stdout).expect("one JSON object");

    let services: Vec<&str> = answer["services"].as_array().unwrap().iter().filter_map(Value::as_str).collect();
    for service in ["checkout.v1.LaneService", "checkout.v1.StoreService", "grpc.health.v1.Health"] {
        assert!(services.contains(&service), "{service} missing from {services:?}");
    }
    // Proto3 JSON: 64-bit integers are strings, and zero fields are left out.
    let totals = &answer["totals"]["ok"];
    assert_eq!(totals["sales"], "2", "{answer}");
    assert_eq!(totals["storeId"], "S001");
    let shifts = answer["shifts"]["ok"]["shifts"].as_array().expect("one shift");
    assert_eq!(shifts.len(), 1, "{answer}");
    assert_eq!(
        (&shifts[0]["cashierId"], &shifts[0]["closedHow"], &shifts[0]["sales"]),
        (&"bo".into(), &"signed off".into(), &"2".into())
    );
    // The lane closed its shift with its own count, which agrees with the ledger's.
    assert_eq!(shifts[0]["settlement"]["agrees"], true, "{answer}");
    assert_eq!(shifts[0]["settlement"]["laneSales"], "2", "{answer}");
    assert_eq!(answer["anonymous_totals"]["code"], "UNAUTHENTICATED", "{answer}");
    assert_eq!(answer["bad_pay"]["code"], "INVALID_ARGUMENT", "{answer}");
    assert!(answer["bad_pay"]["details"].as_str().unwrap().starts_with("payment_code:"), "{answer}");
    // The error details decode with the types reflection gives (AIP-193): a reason to branch on, the field.
    let details = &answer["bad_pay"]["error_details"];
    assert_eq!(details["google.rpc.ErrorInfo"]["reason"], "INVALID_FIELD", "{answer}");
    assert_eq!(details["google.rpc.BadRequest"]["fieldViolations"][0]["field"], "payment_code", "{answer}");
    assert_eq!(answer["missing_payment"]["code"], "NOT_FOUND", "{answer}");
    assert_eq!(answer["missing_payment"]["error_details"]["google.rpc.ErrorInfo"]["reason"], "NOT_FOUND");
    // The audit log has the lane's enrolment, the token issued and both refused calls.
    let audit = answer["audit"]["ok"]["entries"].as_array().expect("audit entries");
    let outcomes: Vec<(&str, &str)> =
        audit.iter().map(|e| (e["method"].as_str().unwrap_or(""), e["outcome"].as_str().unwrap_or(""))).collect();
    for expected in [
        ("checkout.v1.LaneService/EnrolLane", "ok"),
        ("checkout.v1.StoreService/IssueLaneToken", "ok"),
        ("checkout.v1.StoreService/GetTotals", "UNAUTHENTICATED"),
        ("checkout.v1.LaneService/Pay", "INVALID_ARGUMENT"),
    ] {
        assert!(outcomes.contains(&expected), "{expected:?} not in {outcomes:?}");
    }

    assert!(terminate(&mut coordinator.0, std::time::Duration::from_secs(15)).success());
}
