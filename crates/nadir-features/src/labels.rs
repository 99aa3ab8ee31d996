//! Flow labels from a rules file (`nadir extract --labels RULES.toml`).
//!
//! A rules file is a list of `[[rule]]` tables; the first rule whose conditions all
//! hold gives a flow its label, and flows no rule matches get `unlabelled` (default
//! empty). Every output row carries the label column, labelled or not.
//!
//! ```toml
//! unlabelled = "benign"              # optional; "" when absent
//!
//! [[rule]]
//! label = "slowloris"
//! attacker = ["10.0.2.15"]           # addresses or CIDR blocks
//! victim = ["192.168.56.0/24"]
//! victim_ports = [80]                # port on the victim's side
//! protocol = "tcp"                   # tcp, udp, icmp, icmpv6 or a number
//! from = 2020-03-31T00:35:00Z        # flow start >= from (TOML date-time with offset)
//! until = 2020-03-31T00:40:00Z       # flow start <  until
//! files = ["slowloris.pcap"]         # capture file names or path suffixes
//! ```
//!
//! Address conditions do not care which side sent the flow's first packet: a rule
//! with `attacker` and `victim` matches when one endpoint is in `attacker` and the
//! other in `victim` (`attacker_ports`/`victim_ports` are checked on the same sides).

use std::net::IpAddr;
use std::path::{Path, PathBuf};

use ipnet::IpNet;
use serde::Deserialize;

/// A problem with a rules file, with the place it was found.
#[derive(Debug, thiserror::Error)]
pub enum LabelError {
    #[error("reading label rules {path}: {source}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// Syntax or shape error; toml's message names the line and column.
    #[error("label rules {path}: {message}")]
    Parse { path: PathBuf, message: String },
    #[error("label rules {path}, rule {rule} ({label:?}): {what}")]
    Invalid {
        path: PathBuf,
        rule: usize,
        label: String,
        what: String,
    },
}

/// The flow facts a rule can test. `src` is the flow's forward source.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LabelTarget {
    pub src: IpAddr,
    pub src_port: u16,
    pub dst: IpAddr,
    pub dst_port: u16,
    pub protocol: u8,
    /// First packet time, ns since the Unix epoch.
    pub first_ts_ns: i64,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RulesFile {
    #[serde(default)]
    unlabelled: String,
    #[serde(default, rename = "rule")]
    rules: Vec<RuleSpec>,
}

#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum ProtocolSpec {
    Number(u8),
    Name(String),
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RuleSpec {
    label: String,
    #[serde(default)]
    attacker: Vec<String>,
    #[serde(default)]
    victim: Vec<String>,
    #[serde(default)]
    attacker_ports: Vec<u16>,
    #[serde(default)]
    victim_ports: Vec<u16>,
    /// Port on either side (when the roles do not matter).
    #[serde(default)]
    ports: Vec<u16>,
    protocol: Option<ProtocolSpec>,
    from: Option<toml::value::Datetime>,
    until: Option<toml::value::Datetime>,
    #[serde(default)]
    files: Vec<PathBuf>,
}

/// One validated rule.
#[derive(Debug, Clone, PartialEq)]
pub struct LabelRule {
    pub label: String,
    pub attacker: Vec<IpNet>,
    pub victim: Vec<IpNet>,
    pub attacker_ports: Vec<u16>,
    pub victim_ports: Vec<u16>,
    pub ports: Vec<u16>,
    pub protocol: Option<u8>,
    /// Flow start must be in `[from_ns, until_ns)`.
    pub from_ns: Option<i64>,
    pub until_ns: Option<i64>,
    pub files: Vec<PathBuf>,
}

/// The rules of one file, in order.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct LabelRules {
    rules: Vec<LabelRule>,
    unlabelled: String,
}

impl LabelRules {
    /// No rules: every flow is unlabelled (`""`).
    pub fn none() -> Self {
        Self::default()
    }

    pub fn load(path: &Path) -> Result<Self, LabelError> {
        let text = std::fs::read_to_string(path).map_err(|source| LabelError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        Self::parse(&text, path)
    }

    /// Parses rules text; `origin` names it in errors.
    pub fn parse(text: &str, origin: &Path) -> Result<Self, LabelError> {
        let file: RulesFile = toml::from_str(text).map_err(|e| LabelError::Parse {
            path: origin.to_path_buf(),
            message: e.to_string(),
        })?;
        let mut rules = Vec::with_capacity(file.rules.len());
        for (index, spec) in file.rules.into_iter().enumerate() {
            rules.push(validate_rule(spec, index + 1, origin)?);
        }
        Ok(LabelRules {
            rules,
            unlabelled: file.unlabelled,
        })
    }

    pub fn rules(&self) -> &[LabelRule] {
        &self.rules
    }

    /// The label of flows no rule matches.
    pub fn unlabelled(&self) -> &str {
        &self.unlabelled
    }

    /// The rules that can match flows of the capture `file` (rules without `files`
    /// and those naming it), resolved once per file. The labeler owns copies of
    /// them, so flow-table worker threads can each hold one.
    pub fn for_file(&self, file: &Path) -> FileLabeler {
        let rules = self
            .rules
            .iter()
            .filter(|r| r.files.is_empty() || r.files.iter().any(|f| file_matches(file, f)))
            .cloned()
            .collect();
        FileLabeler {
            rules,
            unlabelled: self.unlabelled.clone(),
        }
    }
}

/// Labels flows of one capture file.
#[derive(Debug, Clone)]
pub struct FileLabeler {
    rules: Vec<LabelRule>,
    unlabelled: String,
}

impl FileLabeler {
    /// The label of the first matching rule, or the unlabelled value.
    pub fn label(&self, flow: &LabelTarget) -> &str {
        self.label_of(self.rule_index(flow))
    }

    /// Position (among this file's rules) of the first matching rule, if any; a
    /// compact stand-in for the label where many are kept (packet windows).
    pub fn rule_index(&self, flow: &LabelTarget) -> Option<u32> {
        self.rules
            .iter()
            .position(|r| r.matches(flow))
            .and_then(|i| u32::try_from(i).ok())
    }

    /// The label of a [`FileLabeler::rule_index`] result.
    pub fn label_of(&self, index: Option<u32>) -> &str {
        index
            .and_then(|i| self.rules.get(i as usize))
            .map_or(&self.unlabelled, |r| &r.label)
    }

    /// True when no rule applies to this file (every flow gets the unlabelled value).
    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }
}

fn file_matches(file: &Path, pattern: &Path) -> bool {
    file == pattern || file.ends_with(pattern)
}

impl LabelRule {
    /// True when every condition of the rule holds for `flow`.
    pub fn matches(&self, flow: &LabelTarget) -> bool {
        if self.protocol.is_some_and(|p| p != flow.protocol) {
            return false;
        }
        if self.from_ns.is_some_and(|from| flow.first_ts_ns < from) {
            return false;
        }
        if self.until_ns.is_some_and(|until| flow.first_ts_ns >= until) {
            return false;
        }
        if !self.ports.is_empty()
            && !self.ports.contains(&flow.src_port)
            && !self.ports.contains(&flow.dst_port)
        {
            return false;
        }
        let forward = ((flow.src, flow.src_port), (flow.dst, flow.dst_port));
        let backward = (forward.1, forward.0);
        [forward, backward]
            .into_iter()
            .any(|(attacker, victim)| self.roles_match(attacker, victim))
    }

    fn roles_match(&self, attacker: (IpAddr, u16), victim: (IpAddr, u16)) -> bool {
        in_nets(&self.attacker, attacker.0)
            && in_nets(&self.victim, victim.0)
            && (self.attacker_ports.is_empty() || self.attacker_ports.contains(&attacker.1))
            && (self.victim_ports.is_empty() || self.victim_ports.contains(&victim.1))
    }
}

/// Empty means "any address".
fn in_nets(nets: &[IpNet], addr: IpAddr) -> bool {
    nets.is_empty() || nets.iter().any(|net| net.contains(&addr))
}

fn validate_rule(spec: RuleSpec, rule: usize, path: &Path) -> Result<LabelRule, LabelError> {
    let invalid = |what: String| LabelError::Invalid {
        path: path.to_path_buf(),
        rule,
        label: spec.label.clone(),
        what,
    };
    let parse_nets = |field: &str, items: &[String]| -> Result<Vec<IpNet>, LabelError> {
        items
            .iter()
            .map(|text| {
                parse_net(text).ok_or_else(|| {
                    invalid(format!("{field}: {text:?} is not an address or CIDR block"))
                })
            })
            .collect()
    };
    let attacker = parse_nets("attacker", &spec.attacker)?;
    let victim = parse_nets("victim", &spec.victim)?;
    let protocol = match &spec.protocol {
        None => None,
        Some(ProtocolSpec::Number(n)) => Some(*n),
        Some(ProtocolSpec::Name(name)) => Some(match name.to_ascii_lowercase().as_str() {
            "tcp" => 6,
            "udp" => 17,
            "icmp" => 1,
            "icmpv6" | "ipv6-icmp" => 58,
            "sctp" => 132,
            "gre" => 47,
            _ => {
                return Err(invalid(format!(
                    "protocol {name:?} is unknown (use tcp, udp, icmp, icmpv6 or a number)"
                )))
            }
        }),
    };
    let time =
        |field: &str, value: &Option<toml::value::Datetime>| -> Result<Option<i64>, LabelError> {
            value
                .as_ref()
                .map(|dt| datetime_to_ns(dt).map_err(|why| invalid(format!("{field}: {why}"))))
                .transpose()
        };
    let from_ns = time("from", &spec.from)?;
    let until_ns = time("until", &spec.until)?;
    if let (Some(from), Some(until)) = (from_ns, until_ns) {
        if until <= from {
            return Err(invalid("until must be later than from".into()));
        }
    }
    if spec.label.contains(['\n', '\r']) {
        return Err(invalid("label must be one line".into()));
    }
    Ok(LabelRule {
        label: spec.label,
        attacker,
        victim,
        attacker_ports: spec.attacker_ports,
        victim_ports: spec.victim_ports,
        ports: spec.ports,
        protocol,
        from_ns,
        until_ns,
        files: spec.files,
    })
}

/// An address (a host) or a CIDR block.
fn parse_net(text: &str) -> Option<IpNet> {
    let text = text.trim();
    if let Ok(addr) = text.parse::<IpAddr>() {
        return Some(IpNet::from(addr));
    }
    text.parse::<IpNet>().ok()
}

/// A TOML offset date-time as ns since the Unix epoch (the calendar is jiff's).
fn datetime_to_ns(dt: &toml::value::Datetime) -> Result<i64, String> {
    use toml::value::Offset;
    let (Some(date), Some(time)) = (dt.date, dt.time) else {
        return Err(format!(
            "{dt} needs a date and a time, e.g. 2020-03-31T00:35:00Z"
        ));
    };
    let offset_minutes = match dt.offset {
        Some(Offset::Z) => 0,
        Some(Offset::Custom { minutes }) => i32::from(minutes),
        None => return Err(format!("{dt} has no UTC offset; add Z or +hh:mm")),
    };
    let narrow = |x: u8| i8::try_from(x).map_err(|_| format!("{dt} is out of range"));
    let civil = jiff::civil::DateTime::new(
        i16::try_from(date.year).map_err(|_| format!("{dt} is out of range"))?,
        narrow(date.month)?,
        narrow(date.day)?,
        narrow(time.hour)?,
        narrow(time.minute)?,
        // A leap second reads as :59, as jiff's RFC 3339 parser reads it.
        narrow(time.second.min(59))?,
        i32::try_from(time.nanosecond).map_err(|_| format!("{dt} is out of range"))?,
    )
    .map_err(|e| format!("{dt}: {e}"))?;
    let ns = jiff::tz::Offset::from_seconds(offset_minutes * 60)
        .and_then(|offset| offset.to_timestamp(civil))
        .map_err(|e| format!("{dt}: {e}"))?
        .as_nanosecond();
    i64::try_from(ns).map_err(|_| format!("{dt} is outside the years 1677..2262"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target(src: &str, sport: u16, dst: &str, dport: u16, ts_s: i64) -> LabelTarget {
        LabelTarget {
            src: src.parse().expect("addr"),
            src_port: sport,
            dst: dst.parse().expect("addr"),
            dst_port: dport,
            protocol: 6,
            first_ts_ns: ts_s * 1_000_000_000,
        }
    }

    const RULES: &str = r#"
unlabelled = "benign"

[[rule]]
label = "slowloris"
attacker = ["10.0.2.15"]
victim = ["192.168.56.0/24"]
victim_ports = [80]
protocol = "tcp"
from = 2020-03-31T00:35:00Z
until = 2020-03-31T00:40:00Z

[[rule]]
label = "anything-from-attacker"
attacker = ["10.0.2.15"]

[[rule]]
label = "v6-net"
attacker = ["2001:db8::/32"]
files = ["synscan.pcapng"]
"#;

    fn rules() -> LabelRules {
        LabelRules::parse(RULES, Path::new("test.toml")).expect("valid rules")
    }

    #[test]
    fn first_matching_rule_wins_either_direction() {
        let rules = rules();
        let labels = rules.for_file(Path::new("/data/slowloris.pcap"));
        // 2020-03-31T00:36:00Z = 1585614960
        let t = 1_585_614_960;
        assert_eq!(
            labels.label(&target("10.0.2.15", 40000, "192.168.56.102", 80, t)),
            "slowloris"
        );
        // Reply direction first (flow source = victim): still the attack.
        assert_eq!(
            labels.label(&target("192.168.56.102", 80, "10.0.2.15", 40000, t)),
            "slowloris"
        );
        // Wrong victim port: falls through to the second rule.
        assert_eq!(
            labels.label(&target("10.0.2.15", 40000, "192.168.56.102", 22, t)),
            "anything-from-attacker"
        );
        // Outside the time window.
        assert_eq!(
            labels.label(&target("10.0.2.15", 40000, "192.168.56.102", 80, t + 3600)),
            "anything-from-attacker"
        );
        assert_eq!(
            labels.label(&target("10.0.9.9", 1, "192.168.56.102", 80, t)),
            "benign"
        );
    }

    #[test]
    fn file_rules_apply_only_to_their_file() {
        let rules = rules();
        let flow = target("2001:db8::1", 1, "2001:db9::2", 2, 0);
        assert_eq!(
            rules.for_file(Path::new("x/synscan.pcapng")).label(&flow),
            "v6-net"
        );
        assert_eq!(
            rules.for_file(Path::new("x/other.pcap")).label(&flow),
            "benign"
        );
    }

    #[test]
    fn datetimes_convert_with_offsets() {
        let dt: toml::value::Datetime = "2020-03-31T00:35:29Z".parse().expect("dt");
        assert_eq!(datetime_to_ns(&dt), Ok(1_585_614_929_000_000_000));
        let dt: toml::value::Datetime = "2020-03-30T20:35:29.5-04:00".parse().expect("dt");
        assert_eq!(datetime_to_ns(&dt), Ok(1_585_614_929_500_000_000));
        let local: toml::value::Datetime = "2020-03-31T00:35:29".parse().expect("dt");
        assert!(datetime_to_ns(&local).is_err());
        let ns = |text: &str| datetime_to_ns(&text.parse().expect("dt"));
        assert_eq!(ns("1970-01-01T00:00:00Z"), Ok(0));
        assert_eq!(
            ns("2000-03-01T00:00:00Z"),
            Ok(11_017 * 86_400 * 1_000_000_000)
        );
    }

    #[test]
    fn datetimes_across_leap_days_year_ends_and_the_epoch() {
        let ns = |text: &str| datetime_to_ns(&text.parse().expect("dt"));
        let s = |secs: i64| Ok(secs * 1_000_000_000);
        assert_eq!(ns("1969-12-31T23:59:59Z"), s(-1));
        assert_eq!(ns("1970-01-01T00:59:59+01:00"), s(-1));
        assert_eq!(ns("1900-03-01T00:00:00Z"), s(-2_203_891_200));
        assert_eq!(ns("2020-02-29T12:00:00Z"), s(1_582_977_600));
        assert_eq!(ns("2019-12-31T23:59:59Z"), s(1_577_836_799));
        assert_eq!(ns("2019-12-31T20:00:00-04:00"), s(1_577_836_800));
        // Out of the i64 ns range: refused, not wrapped.
        assert!(ns("2300-01-01T00:00:00Z").is_err());
        assert!(ns("1600-01-01T00:00:00Z").is_err());
    }

    #[test]
    fn bad_rules_name_the_rule_and_the_field() {
        let err = LabelRules::parse(
            "[[rule]]\nlabel = \"x\"\nattacker = [\"10.0.0.300\"]\n",
            Path::new("r.toml"),
        )
        .expect_err("bad address");
        let text = err.to_string();
        assert!(
            text.contains("rule 1") && text.contains("attacker") && text.contains("10.0.0.300"),
            "{text}"
        );

        let err = LabelRules::parse(
            "[[rule]]\nlabel = \"x\"\nprotcol = \"tcp\"\n",
            Path::new("r.toml"),
        )
        .expect_err("unknown key");
        assert!(err.to_string().contains("line 3"), "{err}");

        let err = LabelRules::parse(
            "[[rule]]\nlabel = \"x\"\nprotocol = \"tcpx\"\n",
            Path::new("r.toml"),
        )
        .expect_err("unknown protocol");
        assert!(err.to_string().contains("tcpx"), "{err}");
    }

    #[test]
    fn no_rules_means_empty_label() {
        let rules = LabelRules::none();
        assert_eq!(
            rules
                .for_file(Path::new("a.pcap"))
                .label(&target("1.2.3.4", 1, "5.6.7.8", 2, 0)),
            ""
        );
    }
}
