//! Who may call the coordinator and how much it takes: the security settings and the `--config` file (TOML) they come from.
//!
//! ```toml
//! # Staff tokens: `checkout token new --role manager --name ann` makes one and prints this entry.
//! [[staff]]
//! name = "ann"
//! role = "manager"            # or "viewer": reads only
//! token_sha256 = "…64 hex digits…"
//!
//! [lanes]
//! enrolment_secret_sha256 = ["…"]   # lanes enrol with a secret of these
//! max_lanes = 100
//! max_open_sales_per_lane = 32
//! max_open_sales = 2000
//!
//! [limits]
//! max_connections = 1024
//! max_connections_per_address = 64
//! handshake_timeout_secs = 10
//! max_streams_per_connection = 100
//! max_message_bytes = 262144
//! audit_entries = 200000
//! open_price_cap_fen = 100000     # the most a cashier may type for one open-price item (1000 yuan)
//!
//! [tls]
//! cert = "coordinator.pem"
//! key = "coordinator.key"
//! client_ca = "lanes-ca.pem"     # optional: lanes must show a certificate it signed
//!
//! # Write a manager token and a lane enrolment secret into the data folder (default true).
//! generated_credentials = true
//! ```
//!
//! Only hashes of tokens are configured; the tokens themselves live with whoever holds them.

use std::{path::Path, time::Duration};

use checkout_storage::{AUDIT_KEEP, LaneId};
use serde::Deserialize;

use crate::{
    auth::{Role, StaffToken, TokenHash, parse_hash_hex},
    listener::{ConnectionLimits, TlsFiles},
};

/// Who may call, over what, and how much the coordinator takes.
#[derive(Debug, Clone)]
pub struct Security {
    pub staff: Vec<StaffToken>,
    /// Hashes of the lane enrolment secrets accepted besides the generated one.
    pub enrolment_secrets: Vec<TokenHash>,
    /// Lane tokens configured by hand (besides those enrolled into the ledger).
    pub lane_tokens: Vec<(LaneId, TokenHash)>,
    /// Keep a manager token and a lane enrolment secret in the data folder's `credentials/` (made at first start).
    pub generated_credentials: bool,
    pub tls: Option<TlsFiles>,
    pub limits: Limits,
    /// Measurement only: credentials are not checked and every caller is who its `x-checkout-claim`
    /// header says (`lane L1`, else a manager). Neither the configuration file nor `checkout coordinator`
    /// can set it; `checkout bench coordinator` does, to measure what checking credentials costs.
    pub unchecked_for_benchmarks: bool,
    /// How paid sales earn member points (`[points]`; the store's rule, kept with its other settings).
    pub points: crate::services::members::PointsRule,
}

impl Default for Security {
    fn default() -> Self {
        Security {
            staff: Vec::new(),
            enrolment_secrets: Vec::new(),
            lane_tokens: Vec::new(),
            generated_credentials: true,
            tls: None,
            limits: Limits::default(),
            unchecked_for_benchmarks: false,
            points: crate::services::members::PointsRule::default(),
        }
    }
}

/// How much the coordinator takes from its callers.
#[derive(Debug, Clone)]
pub struct Limits {
    pub connections: ConnectionLimits,
    /// Concurrent calls on one HTTP/2 connection.
    pub max_streams_per_connection: u32,
    /// Largest request message, encoded.
    pub max_message_bytes: usize,
    /// Lanes the store enrols at most.
    pub max_lanes: usize,
    /// Sales a lane may have started and not paid within [`OPEN_SALE_WINDOW`], and the store in all.
    pub max_open_sales_per_lane: usize,
    pub max_open_sales: usize,
    /// Audit entries kept; the oldest go first.
    pub audit_entries: u64,
    /// The most a lane may send as the typed unit price of an open-price item, in minor units of the
    /// store's currency: a higher one is refused (`INVALID_ARGUMENT`) and nothing is charged.
    pub open_price_cap_minor_units: i64,
}

/// [`Limits::open_price_cap_minor_units`] unless configured: 1000 yuan.
pub const DEFAULT_OPEN_PRICE_CAP_MINOR_UNITS: i64 = 100_000;

/// A sale is open from its first charge until it is paid or this long has passed since its last charge.
pub const OPEN_SALE_WINDOW: Duration = Duration::from_secs(15 * 60);

impl Default for Limits {
    fn default() -> Self {
        Limits {
            connections: ConnectionLimits::default(),
            max_streams_per_connection: 100,
            max_message_bytes: 256 * 1024,
            max_lanes: 100,
            max_open_sales_per_lane: 32,
            max_open_sales: 2_000,
            audit_entries: AUDIT_KEEP,
            open_price_cap_minor_units: DEFAULT_OPEN_PRICE_CAP_MINOR_UNITS,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read {path}: {source}")]
    Read { path: String, source: std::io::Error },
    #[error("{path}: {message}")]
    Invalid { path: String, message: String },
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct ConfigFile {
    #[serde(default)]
    staff: Vec<StaffEntry>,
    #[serde(default)]
    lanes: LanesSection,
    #[serde(default)]
    limits: LimitsSection,
    tls: Option<TlsSection>,
    generated_credentials: Option<bool>,
    #[serde(default)]
    points: PointsSection,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct PointsSection {
    per_yuan: Option<i64>,
    #[serde(default)]
    provider_bonus_percent: std::collections::BTreeMap<String, i64>,
    #[serde(default)]
    excluded_gtins: Vec<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct StaffEntry {
    name: String,
    role: Role,
    token_sha256: String,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct LanesSection {
    #[serde(default)]
    enrolment_secret_sha256: Vec<String>,
    #[serde(default)]
    tokens: Vec<LaneTokenEntry>,
    max_lanes: Option<usize>,
    max_open_sales_per_lane: Option<usize>,
    max_open_sales: Option<usize>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct LaneTokenEntry {
    lane_id: String,
    token_sha256: String,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct LimitsSection {
    max_connections: Option<usize>,
    max_connections_per_address: Option<usize>,
    handshake_timeout_secs: Option<u64>,
    max_streams_per_connection: Option<u32>,
    max_message_bytes: Option<usize>,
    audit_entries: Option<u64>,
    open_price_cap_fen: Option<i64>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TlsSection {
    cert: std::path::PathBuf,
    key: std::path::PathBuf,
    client_ca: Option<std::path::PathBuf>,
}

/// Reads a PEM file named by the configuration or the command line.
pub fn read_pem(path: &Path) -> Result<String, ConfigError> {
    std::fs::read_to_string(path).map_err(|source| ConfigError::Read { path: path.display().to_string(), source })
}

impl Security {
    /// Reads the configuration file at `path`; relative file names in it are relative to its folder.
    pub fn load(path: &Path) -> Result<Security, ConfigError> {
        let text = read_pem(path)?;
        Security::parse(&text, path.parent().unwrap_or(Path::new(".")))
            .map_err(|message| ConfigError::Invalid { path: path.display().to_string(), message })
    }

    /// Parses a configuration's text; `folder` anchors relative file names.
    pub fn parse(text: &str, folder: &Path) -> Result<Security, String> {
        let file: ConfigFile = toml::from_str(text).map_err(|e| e.to_string())?;
        let hash = |what: &str, text: &str| {
            parse_hash_hex(text).ok_or_else(|| format!("{what}: expected the token's SHA-256 as 64 hex digits"))
        };
        let mut security = Security::default();
        for entry in &file.staff {
            if entry.name.is_empty() || entry.name.len() > 40 || entry.name.chars().any(|c| c.is_control()) {
                return Err(format!("staff name {:?}: 1 to 40 characters, no control characters", entry.name));
            }
            let token_sha256 = hash(&format!("staff {}", entry.name), &entry.token_sha256)?;
            security.staff.push(StaffToken { name: entry.name.clone(), role: entry.role, token_sha256 });
        }
        for secret in &file.lanes.enrolment_secret_sha256 {
            security.enrolment_secrets.push(hash("lanes.enrolment_secret_sha256", secret)?);
        }
        for entry in &file.lanes.tokens {
            let lane_id = LaneId::parse(&entry.lane_id).map_err(|e| e.to_string())?;
            let token = hash(&format!("lane {lane_id}"), &entry.token_sha256)?;
            security.lane_tokens.push((lane_id, token));
        }
        let limits = &mut security.limits;
        let lanes = &file.lanes;
        limits.max_lanes = lanes.max_lanes.unwrap_or(limits.max_lanes);
        limits.max_open_sales_per_lane = lanes.max_open_sales_per_lane.unwrap_or(limits.max_open_sales_per_lane);
        limits.max_open_sales = lanes.max_open_sales.unwrap_or(limits.max_open_sales);
        let l = &file.limits;
        let connections = &mut limits.connections;
        connections.max_connections = l.max_connections.unwrap_or(connections.max_connections);
        connections.max_connections_per_address =
            l.max_connections_per_address.unwrap_or(connections.max_connections_per_address);
        if let Some(secs) = l.handshake_timeout_secs {
            connections.handshake_timeout = Duration::from_secs(secs.max(1));
        }
        limits.max_streams_per_connection = l.max_streams_per_connection.unwrap_or(limits.max_streams_per_connection);
        limits.max_message_bytes = l.max_message_bytes.unwrap_or(limits.max_message_bytes);
        limits.audit_entries = l.audit_entries.unwrap_or(limits.audit_entries);
        limits.open_price_cap_minor_units = l.open_price_cap_fen.unwrap_or(limits.open_price_cap_minor_units);
        if limits.open_price_cap_minor_units <= 0 {
            return Err("limits.open_price_cap_fen: a positive amount in fen".into());
        }
        if let Some(tls) = &file.tls {
            let read = |p: &Path| read_pem(&folder.join(p)).map_err(|e| e.to_string());
            security.tls = Some(TlsFiles {
                certificate_chain_pem: read(&tls.cert)?,
                private_key_pem: read(&tls.key)?,
                client_ca_pem: tls.client_ca.as_deref().map(read).transpose()?,
            });
        }
        let points = &mut security.points;
        points.per_unit = file.points.per_yuan.unwrap_or(points.per_unit);
        if !(0..=1_000).contains(&points.per_unit) {
            return Err("points.per_yuan: 0 to 1000".into());
        }
        for (wallet, percent) in &file.points.provider_bonus_percent {
            let provider =
                checkout_storage::Provider::ALL.into_iter().find(|p| format!("{p:?}") == *wallet).ok_or_else(|| {
                    format!("points.provider_bonus_percent: {wallet:?} is not WeChatPay, Alipay or UnionPay")
                })?;
            if !(0..=1_000).contains(percent) {
                return Err(format!("points.provider_bonus_percent.{wallet}: 0 to 1000"));
            }
            points.provider_bonus_percent.insert(provider, *percent);
        }
        for gtin in &file.points.excluded_gtins {
            let gtin = checkout_storage::ProductCode::parse(gtin)
                .map_err(|e| format!("points.excluded_gtins: {gtin:?}: {e}"))?;
            points.excluded.insert(gtin);
        }
        security.generated_credentials = file.generated_credentials.unwrap_or(true);
        if security.staff.iter().all(|s| s.role != Role::Manager) && !security.generated_credentials {
            return Err(
                "no manager token: add a [[staff]] entry with role \"manager\" or keep generated_credentials".into()
            );
        }
        Ok(security)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_configuration_is_read_and_mistakes_are_named() {
        let hash = "ab".repeat(32);
        let text = format!(
            "[[staff]]\nname = \"ann\"\nrole = \"viewer\"\ntoken_sha256 = \"{hash}\"\n\n[lanes]\nmax_lanes = 7\n\n[limits]\nhandshake_timeout_secs = 3\n"
        );
        let security = Security::parse(&text, Path::new(".")).unwrap();
        assert_eq!(security.points, crate::services::members::PointsRule::default(), "one point a yuan");
        assert_eq!(security.staff[0].role, Role::Viewer);
        assert_eq!(security.limits.max_lanes, 7);
        assert_eq!(security.limits.connections.handshake_timeout, Duration::from_secs(3));
        assert_eq!(security.limits.open_price_cap_minor_units, DEFAULT_OPEN_PRICE_CAP_MINOR_UNITS);
        assert!(security.generated_credentials);
        let capped = Security::parse("[limits]\nopen_price_cap_fen = 5000\n", Path::new(".")).unwrap();
        assert_eq!(capped.limits.open_price_cap_minor_units, 5_000);
        let zero = Security::parse("[limits]\nopen_price_cap_fen = 0\n", Path::new(".")).unwrap_err();
        assert!(zero.contains("open_price_cap_fen"), "{zero}");

        let typo = Security::parse("[limits]\nmax_conections = 3\n", Path::new(".")).unwrap_err();
        assert!(typo.contains("max_conections"), "{typo}");
        let short =
            Security::parse("[[staff]]\nname = \"a\"\nrole = \"manager\"\ntoken_sha256 = \"abc\"\n", Path::new("."));
        assert!(short.unwrap_err().contains("64 hex digits"));
        let locked_out = Security::parse("generated_credentials = false\n", Path::new(".")).unwrap_err();
        assert!(locked_out.contains("no manager token"), "{locked_out}");
    }
}
