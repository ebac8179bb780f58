//! `edge.toml`: the agent's configuration, validated at start-up with errors
//! that name the key.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use canopy::domain::alert::Rule;
use canopy::domain::device_id::DeviceId;
use canopy::domain::measure::Measure;
use canopy::format::telemetry::MAX_SAMPLES;
use serde::Deserialize;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    pub vehicle_id: DeviceId,
    /// The DBC the telemetry summary decodes with.
    pub dbc: PathBuf,
    pub source: SourceConfig,
    pub spool: SpoolConfig,
    #[serde(default)]
    pub upload: UploadConfig,
    #[serde(default)]
    pub telemetry: TelemetryConfig,
    pub mqtt: Option<MqttConfig>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase", deny_unknown_fields)]
pub enum SourceConfig {
    /// Live buses through SocketCAN (classic and FD).
    Socketcan { interfaces: Vec<String> },
    /// A candump log, replayed.
    Replay {
        file: PathBuf,
        /// 1 = real time, 10 = ten times faster, 0 = as fast as possible.
        #[serde(default = "one")]
        speed: f64,
        /// Shift timestamps so that the log starts now.
        #[serde(default)]
        rebase_time: bool,
    },
    /// The physics-based EV simulator (the laptop build's; the vehicle build
    /// reads the setting only to refuse it with a reason).
    #[cfg_attr(not(feature = "tools"), allow(dead_code))]
    Simulator {
        #[serde(default)]
        seed: u64,
        /// Simulated seconds; 0 runs until stopped.
        #[serde(default)]
        duration_s: f64,
        #[serde(default = "one")]
        speed: f64,
        #[serde(default)]
        drive_cycle: DriveCycleKind,
        /// Module (1..12) that overheats, if any.
        overheat_module: Option<u8>,
        #[serde(default = "default_overheat_after")]
        overheat_after_s: f64,
        /// Start of simulated time (µs since the epoch); now when absent.
        start_us: Option<i64>,
    },
}

#[derive(Debug, Clone, Copy, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum DriveCycleKind {
    Urban,
    Highway,
    #[default]
    Mixed,
}

fn one() -> f64 {
    1.0
}
fn default_overheat_after() -> f64 {
    120.0
}

#[derive(Debug, Clone, Copy, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub enum FullPolicy {
    /// Delete the oldest sealed batches to make room for new frames.
    #[default]
    DropOldest,
    /// Keep what is spooled and refuse new frames until there is room.
    DropNewest,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SpoolConfig {
    pub dir: PathBuf,
    /// fdatasync interval: what a power cut can take at most.
    #[serde(default = "default_sync_interval")]
    pub sync_interval_ms: u64,
    /// A batch is sealed this long after its first frame (default 5 min:
    /// each raw object costs its decoding, tier and compaction requests, so
    /// fewer, larger objects cost less — `make cost`; 60 makes the decoded
    /// history fresher)...
    #[serde(default = "default_seal_after")]
    pub seal_after_s: f64,
    /// ...or at this many frames, whichever comes first.
    #[serde(default = "default_seal_max_frames")]
    pub seal_max_frames: u64,
    /// The spool's size cap (open and sealed batches together).
    #[serde(default = "default_max_bytes")]
    pub max_bytes: u64,
    #[serde(default)]
    pub full_policy: FullPolicy,
}

fn default_sync_interval() -> u64 {
    200
}
fn default_seal_after() -> f64 {
    300.0
}
fn default_seal_max_frames() -> u64 {
    2_000_000
}
fn default_max_bytes() -> u64 {
    1 << 30
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UploadConfig {
    #[serde(default = "yes")]
    pub enabled: bool,
    pub bucket: Option<String>,
    /// AWS region; the SDK's default chain when absent.
    pub region: Option<String>,
    /// Endpoint override (the local stack); AWS when absent.
    pub endpoint: Option<String>,
    #[serde(default = "default_retry_initial")]
    pub retry_initial_ms: u64,
    #[serde(default = "default_retry_max")]
    pub retry_max_ms: u64,
    /// Files larger than this go up in parts.
    #[serde(default = "default_multipart_bytes")]
    pub multipart_above_bytes: u64,
    /// Where upload credentials come from: the AWS IoT credentials provider
    /// when set, else the SDK's default chain (environment, profile, ...).
    pub credentials: Option<IotCredentialsConfig>,
}

/// The AWS IoT credentials provider, asked with the vehicle's certificate.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IotCredentialsConfig {
    /// `https://<prefix>.credentials.iot.<region>.amazonaws.com`.
    pub endpoint: String,
    /// The stack's role alias (output `VehicleUploadRoleAlias`).
    pub role_alias: String,
    /// The CA the endpoint's certificate chains to (AmazonRootCA1.pem).
    pub ca: PathBuf,
    pub cert: PathBuf,
    pub key: PathBuf,
}

impl Default for UploadConfig {
    fn default() -> Self {
        Self {
            enabled: false,
            bucket: None,
            region: None,
            endpoint: None,
            retry_initial_ms: default_retry_initial(),
            retry_max_ms: default_retry_max(),
            multipart_above_bytes: default_multipart_bytes(),
            credentials: None,
        }
    }
}

fn yes() -> bool {
    true
}
fn default_retry_initial() -> u64 {
    1_000
}
fn default_retry_max() -> u64 {
    300_000
}
fn default_multipart_bytes() -> u64 {
    64 * 1024 * 1024
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TelemetryConfig {
    #[serde(default = "yes")]
    pub enabled: bool,
    /// How often a sample is taken (the interval its extremes cover).
    #[serde(default = "default_interval")]
    pub interval_ms: u64,
    /// How often a message goes out with the samples taken since (telemetry
    /// v2); equal to `interval_ms`, every sample goes alone as a v1 message.
    /// A sample that trips an alert rule goes at once.
    #[serde(default = "default_publish_interval")]
    pub publish_interval_ms: u64,
    /// Messages held while the broker is unreachable; the oldest go first.
    #[serde(default = "default_max_buffered")]
    pub max_buffered: usize,
    /// Which DBC signal feeds each field, as `Message.Signal`.
    #[serde(default)]
    pub signals: SignalMap,
    /// The alert rules the edge decides on every BMS frame: the alerts
    /// function's rules (its `ALERT_RULES`), as `[[telemetry.alert_rules]]`
    /// tables of `name`, `measure`, `comparison` (`">"` or `"<"`),
    /// `threshold`, `severity` and `cooldown` (s). None: the cloud decides alone.
    #[serde(default)]
    pub alert_rules: Vec<Rule>,
}

impl TelemetryConfig {
    /// Samples a message carries at most.
    pub fn samples_per_message(&self) -> usize {
        usize::try_from(self.publish_interval_ms.div_ceil(self.interval_ms.max(1)))
            .unwrap_or(1)
            .clamp(1, MAX_SAMPLES)
    }
}

impl Default for TelemetryConfig {
    fn default() -> Self {
        Self {
            enabled: false,
            interval_ms: default_interval(),
            publish_interval_ms: default_publish_interval(),
            max_buffered: default_max_buffered(),
            signals: SignalMap::default(),
            alert_rules: Vec::new(),
        }
    }
}

fn default_interval() -> u64 {
    1_000
}
fn default_publish_interval() -> u64 {
    5_000
}
fn default_max_buffered() -> usize {
    3_600
}

/// DBC signals behind the telemetry fields; defaults fit `dbc/ev_powertrain.dbc`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SignalMap {
    #[serde(default = "s_soc")]
    pub soc_pct: String,
    #[serde(default = "s_voltage")]
    pub pack_voltage_v: String,
    #[serde(default = "s_current")]
    pub pack_current_a: String,
    #[serde(default = "s_vmin")]
    pub cell_voltage_min_v: String,
    #[serde(default = "s_vmax")]
    pub cell_voltage_max_v: String,
    #[serde(default = "s_tmin")]
    pub cell_temp_min_c: String,
    #[serde(default = "s_tmax")]
    pub cell_temp_max_c: String,
    #[serde(default = "s_speed")]
    pub speed_kph: String,
}

impl Default for SignalMap {
    fn default() -> Self {
        Self {
            soc_pct: s_soc(),
            pack_voltage_v: s_voltage(),
            pack_current_a: s_current(),
            cell_voltage_min_v: s_vmin(),
            cell_voltage_max_v: s_vmax(),
            cell_temp_min_c: s_tmin(),
            cell_temp_max_c: s_tmax(),
            speed_kph: s_speed(),
        }
    }
}

impl SignalMap {
    /// (measure, `Message.Signal`) pairs, in [`Measure::REQUIRED`] order.
    pub fn entries(&self) -> [(Measure, &str); Measure::REQUIRED.len()] {
        Measure::REQUIRED.map(|m| (m, self.signal(m)))
    }

    fn signal(&self, m: Measure) -> &str {
        match m {
            Measure::SocPct => &self.soc_pct,
            Measure::PackVoltageV => &self.pack_voltage_v,
            Measure::PackCurrentA => &self.pack_current_a,
            Measure::CellVoltageMinV => &self.cell_voltage_min_v,
            Measure::CellVoltageMaxV => &self.cell_voltage_max_v,
            Measure::CellTempMinC => &self.cell_temp_min_c,
            Measure::CellTempMaxC => &self.cell_temp_max_c,
            Measure::SpeedKph => &self.speed_kph,
            // Derived by the aggregator from the cell voltage pair, never mapped.
            Measure::CellVoltageSpreadV => "",
        }
    }
}

fn s_soc() -> String {
    "BMS_PackStatus.StateOfCharge".into()
}
fn s_voltage() -> String {
    "BMS_PackStatus.PackVoltage".into()
}
fn s_current() -> String {
    "BMS_PackStatus.PackCurrent".into()
}
fn s_vmin() -> String {
    "BMS_CellVoltageSummary.CellVoltageMin".into()
}
fn s_vmax() -> String {
    "BMS_CellVoltageSummary.CellVoltageMax".into()
}
fn s_tmin() -> String {
    "BMS_TemperatureSummary.CellTempMin".into()
}
fn s_tmax() -> String {
    "BMS_TemperatureSummary.CellTempMax".into()
}
fn s_speed() -> String {
    "VCU_VehicleStatus.VehicleSpeed".into()
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MqttConfig {
    pub host: String,
    #[serde(default = "default_mqtt_port")]
    pub port: u16,
    /// The MQTT client id; AWS IoT policies tie it to the thing name. Defaults to `vehicle_id`.
    pub client_id: Option<String>,
    #[serde(default = "default_keep_alive")]
    pub keep_alive_s: u64,
    /// X.509 client authentication, as AWS IoT Core requires. Only a loopback
    /// broker may go without.
    pub tls: Option<TlsConfig>,
    /// Publish straight to the stack's topic rules (AWS IoT Basic Ingest,
    /// which is not billed as messaging) instead of through the broker.
    pub basic_ingest: Option<BasicIngestConfig>,
}

/// The stack's two topic rules, by name (its outputs `TelemetryRuleName` and
/// `AlertsRuleName`). Every message goes to the telemetry rule; to the alerts
/// rule go the messages the cloud must judge: those holding a sample that
/// tripped one of the edge's alert rules, or all of them when the edge has none.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BasicIngestConfig {
    pub telemetry_rule: String,
    pub alerts_rule: String,
}

fn default_mqtt_port() -> u16 {
    8883
}
fn default_keep_alive() -> u64 {
    30
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsConfig {
    pub ca: PathBuf,
    pub cert: PathBuf,
    pub key: PathBuf,
}

impl Config {
    pub fn load(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        let base = path.parent().unwrap_or(Path::new("."));
        Self::parse(&text, base).with_context(|| format!("in {}", path.display()))
    }

    /// Parses and validates; relative paths are taken from `base`.
    pub fn parse(text: &str, base: &Path) -> Result<Self> {
        let mut config: Config = toml::from_str(text)?;
        config.resolve_paths(base);
        config.validate()?;
        Ok(config)
    }

    fn resolve_paths(&mut self, base: &Path) {
        let resolve = |p: &mut PathBuf| {
            if p.is_relative() {
                *p = base.join(&*p);
            }
        };
        resolve(&mut self.dbc);
        resolve(&mut self.spool.dir);
        if let SourceConfig::Replay { file, .. } = &mut self.source {
            resolve(file);
        }
        if let Some(tls) = self.mqtt.as_mut().and_then(|m| m.tls.as_mut()) {
            resolve(&mut tls.ca);
            resolve(&mut tls.cert);
            resolve(&mut tls.key);
        }
        if let Some(c) = self.upload.credentials.as_mut() {
            resolve(&mut c.ca);
            resolve(&mut c.cert);
            resolve(&mut c.key);
        }
    }

    fn validate(&self) -> Result<()> {
        self.validate_source()?;
        self.validate_spool()?;
        self.validate_upload()?;
        if self.telemetry.enabled {
            self.validate_telemetry()?;
        }
        Ok(())
    }

    fn validate_source(&self) -> Result<()> {
        // The simulators are laptop tools: a vehicle's build has a bus to read.
        #[cfg(not(feature = "tools"))]
        if matches!(self.source, SourceConfig::Simulator { .. }) {
            bail!(
                "source.kind = \"simulator\": this canopy-edge is the vehicle build, without the simulators; \
                 use a build with the `tools` feature (the default), or kind = \"socketcan\" or \"replay\""
            );
        }
        match &self.source {
            SourceConfig::Socketcan { interfaces } if interfaces.is_empty() => {
                bail!("source.interfaces: name at least one interface, like [\"can0\"]")
            }
            SourceConfig::Replay { speed, .. } | SourceConfig::Simulator { speed, .. }
                if speed.is_nan() || *speed < 0.0 =>
            {
                bail!("source.speed: must be 0 (as fast as possible) or positive, not {speed}")
            }
            SourceConfig::Simulator {
                overheat_module: Some(m),
                ..
            } if !(1..=12).contains(m) => {
                bail!("source.overheat_module: the pack has modules 1 to 12, not {m}")
            }
            SourceConfig::Simulator { duration_s, .. } if duration_s.is_nan() || *duration_s < 0.0 => {
                bail!("source.duration_s: must be 0 (forever) or positive")
            }
            _ => {}
        }
        Ok(())
    }

    fn validate_spool(&self) -> Result<()> {
        let s = &self.spool;
        if s.sync_interval_ms == 0 || s.sync_interval_ms > 60_000 {
            bail!(
                "spool.sync_interval_ms: must be within 1..=60000, not {}",
                s.sync_interval_ms
            );
        }
        if s.seal_after_s.is_nan() || s.seal_after_s < 1.0 {
            bail!("spool.seal_after_s: must be at least 1, not {}", s.seal_after_s);
        }
        if s.seal_max_frames == 0 {
            bail!("spool.seal_max_frames: must be positive");
        }
        if s.max_bytes < 16 * 1024 * 1024 {
            bail!("spool.max_bytes: at least 16 MiB (16777216), not {}", s.max_bytes);
        }
        Ok(())
    }

    fn validate_upload(&self) -> Result<()> {
        if self.upload.enabled && self.upload.bucket.as_deref().is_none_or(str::is_empty) {
            bail!("upload.bucket: required when upload.enabled is true");
        }
        if let Some(endpoint) = &self.upload.endpoint
            && !endpoint.starts_with("https://")
            && !is_loopback_url(endpoint)
        {
            bail!(
                "upload.endpoint: {endpoint} must be https:// (only a loopback endpoint may go without TLS: raw CAN traffic and credentials cross it)"
            );
        }
        if let Some(c) = &self.upload.credentials {
            crate::iot_credentials::check_endpoint(&c.endpoint)?;
            if c.role_alias.is_empty() {
                bail!("upload.credentials.role_alias: required (the stack's output VehicleUploadRoleAlias)");
            }
        }
        if self.upload.retry_initial_ms == 0 || self.upload.retry_max_ms < self.upload.retry_initial_ms {
            bail!("upload.retry_initial_ms / upload.retry_max_ms: need 0 < initial <= max");
        }
        Ok(())
    }

    /// Telemetry's settings, and the broker it needs.
    fn validate_telemetry(&self) -> Result<()> {
        if self.telemetry.interval_ms < 100 {
            bail!(
                "telemetry.interval_ms: at least 100, not {}",
                self.telemetry.interval_ms
            );
        }
        let t = &self.telemetry;
        if t.publish_interval_ms < t.interval_ms || t.publish_interval_ms > t.interval_ms * MAX_SAMPLES as u64 {
            bail!(
                "telemetry.publish_interval_ms: {} is outside interval_ms ({}) to {MAX_SAMPLES} × interval_ms",
                t.publish_interval_ms,
                t.interval_ms
            );
        }
        if let Some(rule) = t
            .alert_rules
            .iter()
            .find(|r| !r.threshold.is_finite() || r.name.is_empty())
        {
            bail!(
                "telemetry.alert_rules: rule {:?} needs a name and a finite threshold",
                rule.name
            );
        }
        if self.telemetry.max_buffered == 0 {
            bail!("telemetry.max_buffered: must be positive");
        }
        let Some(mqtt) = &self.mqtt else {
            bail!("mqtt: a [mqtt] section is required when telemetry.enabled is true");
        };
        if let Some(b) = &mqtt.basic_ingest {
            for (key, name) in [("telemetry_rule", &b.telemetry_rule), ("alerts_rule", &b.alerts_rule)] {
                if name.is_empty() || !name.bytes().all(|c| c.is_ascii_alphanumeric() || c == b'_') {
                    bail!("mqtt.basic_ingest.{key}: {name:?} is not a topic rule name (letters, digits and '_')");
                }
            }
        }
        if mqtt.tls.is_none() && !is_loopback_host(&mqtt.host) {
            bail!(
                "mqtt.tls: ca, cert and key are required for {} (only a loopback broker may go without TLS)",
                mqtt.host
            );
        }
        for (field, value) in self.telemetry.signals.entries() {
            if value.split_once('.').is_none_or(|(m, s)| m.is_empty() || s.is_empty()) {
                bail!("telemetry.signals.{field}: expected Message.Signal, not {value:?}");
            }
        }
        Ok(())
    }

    pub fn mqtt_client_id(&self) -> String {
        self.mqtt
            .as_ref()
            .and_then(|m| m.client_id.clone())
            .unwrap_or_else(|| self.vehicle_id.to_string())
    }
}

pub fn is_loopback_host(host: &str) -> bool {
    host == "localhost" || host.parse::<std::net::IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

/// `http://127.0.0.1:4566`, `http://localhost/`, `http://[::1]:9000`.
fn is_loopback_url(url: &str) -> bool {
    let Some(rest) = url.strip_prefix("http://") else {
        return false;
    };
    let authority = rest.split('/').next().unwrap_or_default();
    let host = match authority.strip_prefix('[') {
        Some(v6) => v6.split(']').next().unwrap_or_default(),
        None => authority.rsplit_once(':').map_or(authority, |(h, _)| h),
    };
    is_loopback_host(host)
}

#[cfg(test)]
mod tests {
    use super::*;

    const MINIMAL: &str = r#"
vehicle_id = "sim-001"
dbc = "ev.dbc"
[source]
kind = "replay"
file = "drive.log"
[spool]
dir = "spool"
"#;

    fn parse(text: &str) -> Result<Config> {
        Config::parse(text, Path::new("/etc/canopy"))
    }

    fn error(text: &str) -> String {
        format!("{:#}", parse(text).unwrap_err())
    }

    #[cfg(not(feature = "tools"))]
    #[test]
    fn the_vehicle_build_refuses_the_simulator_with_its_reason() {
        let text = MINIMAL.replace("kind = \"replay\"\nfile = \"drive.log\"", "kind = \"simulator\"");
        assert!(
            error(&text).contains("the vehicle build, without the simulators"),
            "{}",
            error(&text)
        );
    }

    #[test]
    fn a_minimal_file_gets_defaults_and_paths_relative_to_it() {
        let c = parse(MINIMAL).unwrap();
        assert_eq!(c.dbc, PathBuf::from("/etc/canopy/ev.dbc"));
        assert_eq!(c.spool.dir, PathBuf::from("/etc/canopy/spool"));
        assert_eq!(c.spool.seal_after_s, 300.0);
        assert_eq!(c.spool.full_policy, FullPolicy::DropOldest);
        assert!(!c.upload.enabled && !c.telemetry.enabled);
        assert!(matches!(c.source, SourceConfig::Replay { speed, .. } if speed == 1.0));
    }

    #[test]
    fn errors_name_the_key() {
        assert!(
            error(&MINIMAL.replace("dir = \"spool\"", "dir = \"spool\"\nseal_after_s = 0"))
                .contains("spool.seal_after_s")
        );
        assert!(error(&MINIMAL.replace("vehicle_id = \"sim-001\"", "vehicle_id = \"a/b\"")).contains("invalid id"));
        assert!(error(&MINIMAL.replace("[spool]", "[spool]\nbogus = 1")).contains("unknown field `bogus`"));
        assert!(error(&format!("{MINIMAL}[upload]\nenabled = true\n")).contains("upload.bucket"));
        assert!(error(&format!("{MINIMAL}[telemetry]\nenabled = true\n")).contains("mqtt: a [mqtt] section"));
        let remote =
            format!("{MINIMAL}[telemetry]\nenabled = true\n[mqtt]\nhost = \"abc-ats.iot.eu-west-1.amazonaws.com\"\n");
        assert!(error(&remote).contains("mqtt.tls"));
        let signals = format!(
            "{MINIMAL}[telemetry]\nenabled = true\n[telemetry.signals]\nsoc_pct = \"Soc\"\n[mqtt]\nhost = \"127.0.0.1\"\n"
        );
        assert!(error(&signals).contains("telemetry.signals.soc_pct"));
        assert!(error(&MINIMAL.replace("kind = \"replay\"", "kind = \"tape\"")).contains("unknown variant `tape`"));
    }

    #[test]
    fn an_upload_endpoint_needs_tls_unless_it_is_loopback() {
        let with = |endpoint: &str| format!("{MINIMAL}[upload]\nbucket = \"b\"\nendpoint = \"{endpoint}\"\n");
        for ok in [
            "https://s3.example.com",
            "http://127.0.0.1:4566",
            "http://localhost:9000/",
            "http://[::1]:9000",
        ] {
            assert!(parse(&with(ok)).is_ok(), "{ok}");
        }
        for bad in ["http://s3.example.com", "http://10.0.0.5:9000", "ftp://127.0.0.1"] {
            assert!(error(&with(bad)).contains("upload.endpoint"), "{bad}");
        }
    }

    #[test]
    fn iot_credentials_come_from_the_bundle_beside_the_file() {
        let with = |endpoint: &str| {
            format!(
                "{MINIMAL}[upload]\nbucket = \"b\"\n[upload.credentials]\nendpoint = \"{endpoint}\"\n\
                 role_alias = \"canopy-upload\"\nca = \"AmazonRootCA1.pem\"\ncert = \"cert.pem\"\nkey = \"/secure/key.pem\"\n"
            )
        };
        let c = parse(&with("https://c2abc.credentials.iot.eu-west-1.amazonaws.com")).unwrap();
        let credentials = c.upload.credentials.unwrap();
        assert_eq!(credentials.ca, PathBuf::from("/etc/canopy/AmazonRootCA1.pem"));
        assert_eq!(credentials.cert, PathBuf::from("/etc/canopy/cert.pem"));
        assert_eq!(credentials.key, PathBuf::from("/secure/key.pem"));
        for bad in [
            "http://c2abc.credentials.iot",
            "https://h/role-aliases/x",
            "https://h:port",
        ] {
            assert!(error(&with(bad)).contains("upload.credentials.endpoint"), "{bad}");
        }
        assert!(
            error(&with("https://h").replace("\"canopy-upload\"", "\"\"")).contains("upload.credentials.role_alias")
        );
    }

    #[test]
    fn a_loopback_broker_may_go_without_tls() {
        let c = parse(&format!(
            "{MINIMAL}[telemetry]\nenabled = true\n[mqtt]\nhost = \"127.0.0.1\"\nport = 1883\n"
        ))
        .unwrap();
        assert_eq!(c.mqtt_client_id(), "sim-001");
    }

    #[test]
    fn basic_ingest_names_both_rules() {
        let with = |rules: &str| {
            format!(
                "{MINIMAL}[telemetry]\nenabled = true\n[mqtt]\nhost = \"127.0.0.1\"\n[mqtt.basic_ingest]\n{rules}\n"
            )
        };
        let c = parse(&with("telemetry_rule = \"T_1\"\nalerts_rule = \"A_2\"")).unwrap();
        let b = c.mqtt.unwrap().basic_ingest.unwrap();
        assert_eq!((b.telemetry_rule.as_str(), b.alerts_rule.as_str()), ("T_1", "A_2"));
        let err = error(&with("telemetry_rule = \"T_1\""));
        assert!(err.contains("missing field `alerts_rule`"), "{err}");
        let err = error(&with("telemetry_rule = \"T-1\"\nalerts_rule = \"A_2\""));
        assert!(err.starts_with("mqtt.basic_ingest.telemetry_rule: \"T-1\""), "{err}");
    }

    #[test]
    fn samples_go_every_publish_interval_and_alert_rules_are_the_alerts_functions() {
        let with = |telemetry: &str| {
            format!("{MINIMAL}[telemetry]\nenabled = true\n{telemetry}\n[mqtt]\nhost = \"127.0.0.1\"\n")
        };
        let c = parse(&with("")).unwrap();
        assert_eq!(
            (c.telemetry.publish_interval_ms, c.telemetry.samples_per_message()),
            (5_000, 5)
        );
        assert!(
            c.telemetry.alert_rules.is_empty(),
            "the cloud decides alone unless told"
        );
        let c = parse(&with("interval_ms = 2000\npublish_interval_ms = 2000")).unwrap();
        assert_eq!(c.telemetry.samples_per_message(), 1, "each sample alone, as v1");
        let err = error(&with("publish_interval_ms = 500"));
        assert!(
            err.starts_with("telemetry.publish_interval_ms: 500 is outside"),
            "{err}"
        );
        let rules = r#"
[[telemetry.alert_rules]]
name = "over-temperature"
measure = "cell_temp_max_c"
comparison = ">"
threshold = 60
severity = "critical"
cooldown = 600"#;
        let c = parse(&with(rules)).unwrap();
        let rule = &c.telemetry.alert_rules[0];
        assert_eq!((rule.measure, rule.threshold), (Measure::CellTempMaxC, 60.0));
        let err = error(&with(&rules.replace("cell_temp_max_c", "oil_temp_c")));
        assert!(err.contains("oil_temp_c"), "{err}");
    }
}
