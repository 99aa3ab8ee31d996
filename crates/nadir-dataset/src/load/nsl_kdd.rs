//! NSL-KDD: headerless, 41 features, label, difficulty (seeds-spec §6.3).

/// The 41 feature names in file order (as in `Field_Names.csv`).
pub const FEATURES: [&str; 41] = [
    "duration",
    "protocol_type",
    "service",
    "flag",
    "src_bytes",
    "dst_bytes",
    "land",
    "wrong_fragment",
    "urgent",
    "hot",
    "num_failed_logins",
    "logged_in",
    "num_compromised",
    "root_shell",
    "su_attempted",
    "num_root",
    "num_file_creations",
    "num_shells",
    "num_access_files",
    "num_outbound_cmds",
    "is_host_login",
    "is_guest_login",
    "count",
    "srv_count",
    "serror_rate",
    "srv_serror_rate",
    "rerror_rate",
    "srv_rerror_rate",
    "same_srv_rate",
    "diff_srv_rate",
    "srv_diff_host_rate",
    "dst_host_count",
    "dst_host_srv_count",
    "dst_host_same_srv_rate",
    "dst_host_diff_srv_rate",
    "dst_host_same_src_port_rate",
    "dst_host_srv_diff_host_rate",
    "dst_host_serror_rate",
    "dst_host_srv_serror_rate",
    "dst_host_rerror_rate",
    "dst_host_srv_rerror_rate",
];

/// Symbolic columns, one-hot encoded as `name=value` with categories learned on training data.
pub const CATEGORICAL: [&str; 3] = ["protocol_type", "service", "flag"];

/// Always 0 in NSL-KDD: dropped at load (seeds-spec §6.3 recommends it).
pub const DROPPED: &str = "num_outbound_cmds";

pub const LABEL: &str = "label";
pub const DIFFICULTY: &str = "difficulty";

/// All 43 column names.
pub fn header() -> Vec<String> {
    FEATURES
        .iter()
        .chain(&[LABEL, DIFFICULTY])
        .map(|s| s.to_string())
        .collect()
}

/// Whether a headerless first record looks like NSL-KDD: 43 fields (or 42 without difficulty),
/// numeric duration, and a protocol of tcp/udp/icmp.
pub fn looks_like(first: &[&[u8]]) -> bool {
    (first.len() == 43 || first.len() == 42)
        && lexical_core::parse::<f64>(first[0].trim_ascii()).is_ok()
        && matches!(first[1].trim_ascii(), b"tcp" | b"udp" | b"icmp")
}
