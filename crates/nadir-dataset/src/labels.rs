//! Labels: binary (benign vs attack), multiclass, or attack family, with the mapping stored.

use serde::{Deserialize, Serialize};

/// How raw labels become class ids.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LabelMode {
    /// 0 = benign, 1 = attack.
    #[default]
    Binary,
    /// One class per raw label (scenario id, attack name).
    Multiclass,
    /// One class per attack family (NSL-KDD: normal, dos, probe, r2l, u2r); other schemas
    /// fall back to multiclass.
    Family,
}

impl std::fmt::Display for LabelMode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            LabelMode::Binary => "binary",
            LabelMode::Multiclass => "multiclass",
            LabelMode::Family => "family",
        })
    }
}

/// The stored label mapping. `classes[id]` names class `id` of `Dataset::y`; the raw labels
/// (`raw_classes`, indexed by `Dataset::y_raw`) keep the finer names, e.g. the attack name or
/// scenario behind a binary `attack` class, for per-scenario metrics.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LabelMap {
    pub mode: LabelMode,
    /// Class id -> name.
    pub classes: Vec<String>,
    /// Class id of benign traffic (always 0 in binary mode).
    pub benign_class: u32,
    /// Raw label id -> raw label as written in the data (`neptune`, `3`).
    pub raw_classes: Vec<String>,
    /// Raw label id -> human name (NSL-KDD: the attack name; Kubernetes: the scenario).
    pub raw_names: Vec<String>,
    /// Raw label id -> family (`normal`, `dos`, ..., or the scenario name when there are none).
    pub raw_families: Vec<String>,
    /// Raw label id -> class id.
    pub raw_to_class: Vec<u32>,
}

impl LabelMap {
    pub fn n_classes(&self) -> usize {
        self.classes.len()
    }

    pub fn class_name(&self, id: u32) -> Option<&str> {
        self.classes.get(id as usize).map(String::as_str)
    }

    /// Raw label id of a raw label string (exact, then case-insensitive).
    pub fn raw_id(&self, raw: &str) -> Option<u32> {
        let raw = raw.trim();
        self.raw_classes
            .iter()
            .position(|c| c == raw)
            .or_else(|| {
                self.raw_classes
                    .iter()
                    .position(|c| c.eq_ignore_ascii_case(raw))
            })
            .map(|i| i as u32)
    }

    /// Takes in a raw label the map has not seen, where the mode gives it a meaning: in binary
    /// mode any label is benign or an attack (`portscan` scored by a bundle trained on other
    /// attacks is an attack). Returns its new raw id; `None` in the other modes, whose classes
    /// are fixed by training.
    pub fn admit(&mut self, raw: &str) -> Option<u32> {
        if self.mode != LabelMode::Binary {
            return None;
        }
        let raw = raw.trim();
        self.raw_classes.push(raw.to_string());
        self.raw_names.push(raw.to_string());
        self.raw_families.push(raw.to_string());
        self.raw_to_class.push(if is_benign_label(raw) {
            self.benign_class
        } else {
            1 - self.benign_class.min(1)
        });
        Some(self.raw_classes.len() as u32 - 1)
    }

    /// The first `limit` raw labels as a user reads them: `3 (Node-RED RCE)` where the data's
    /// label is a code for a name.
    pub fn known_labels(&self, limit: usize) -> String {
        let mut shown: Vec<String> = self
            .raw_classes
            .iter()
            .zip(&self.raw_names)
            .take(limit)
            .map(|(label, name)| {
                if label == name {
                    label.clone()
                } else {
                    format!("{label} ({name})")
                }
            })
            .collect();
        if self.raw_classes.len() > limit {
            shown.push(format!("... ({} in all)", self.raw_classes.len()));
        }
        shown.join(", ")
    }

    /// Builds the map for `mode` from raw labels (raw id order = `raw`), with the benign raw
    /// label, names and families.
    pub fn build(mode: LabelMode, raw: Vec<RawClass>) -> LabelMap {
        let benign_raw = raw.iter().position(|r| r.benign);
        let raw_classes: Vec<String> = raw.iter().map(|r| r.label.clone()).collect();
        let raw_names: Vec<String> = raw.iter().map(|r| r.name.clone()).collect();
        let raw_families: Vec<String> = raw.iter().map(|r| r.family.clone()).collect();
        let (classes, raw_to_class, benign_class) = match mode {
            LabelMode::Binary => (
                vec!["benign".to_string(), "attack".to_string()],
                raw.iter().map(|r| u32::from(!r.benign)).collect(),
                0,
            ),
            LabelMode::Multiclass => (
                raw_names.clone(),
                (0..raw.len() as u32).collect(),
                benign_raw.unwrap_or(0) as u32,
            ),
            LabelMode::Family => {
                let mut families: Vec<String> = Vec::new();
                // Benign family first so class 0 is benign.
                if let Some(b) = benign_raw {
                    families.push(raw_families[b].clone());
                }
                for f in &raw_families {
                    if !families.contains(f) {
                        families.push(f.clone());
                    }
                }
                let map = raw_families
                    .iter()
                    .map(|f| families.iter().position(|g| g == f).unwrap_or(0) as u32)
                    .collect();
                (families, map, 0)
            }
        };
        LabelMap {
            mode,
            classes,
            benign_class,
            raw_classes,
            raw_names,
            raw_families,
            raw_to_class,
        }
    }
}

/// One raw label value and what it means.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawClass {
    pub label: String,
    pub name: String,
    pub family: String,
    pub benign: bool,
}

impl RawClass {
    pub fn new(label: &str, name: &str, family: &str, benign: bool) -> RawClass {
        RawClass {
            label: label.into(),
            name: name.into(),
            family: family.into(),
            benign,
        }
    }
}

/// Kubernetes misuse dataset label ids and scenario names (seeds-spec §6.1.3).
pub const K8S_SCENARIOS: [&str; 12] = [
    "Benign",
    "CVE-2020-13379",
    "Node-RED Reconnaissance",
    "Node-RED RCE",
    "Node-RED Container Escape",
    "CVE-2021-43798",
    "CVE-2019-20933",
    "CVE-2021-30465",
    "CVE-2021-25741",
    "CVE-2022-23648",
    "CVE-2019-5736",
    "DSB Nuclei Scan",
];

pub fn k8s_raw_classes() -> Vec<RawClass> {
    K8S_SCENARIOS
        .iter()
        .enumerate()
        .map(|(id, name)| RawClass::new(&id.to_string(), name, name, id == 0))
        .collect()
}

/// NSL-KDD label names and their families (seeds-spec §6.3; the training names agree with
/// `nsl-kdd/Attack_Types.csv`, checked in the tests). `httptunnel` is listed under u2r.
pub const NSL_KDD_ATTACKS: &[(&str, &str)] = &[
    ("normal", "normal"),
    ("back", "dos"),
    ("land", "dos"),
    ("neptune", "dos"),
    ("pod", "dos"),
    ("smurf", "dos"),
    ("teardrop", "dos"),
    ("apache2", "dos"),
    ("mailbomb", "dos"),
    ("processtable", "dos"),
    ("udpstorm", "dos"),
    ("ipsweep", "probe"),
    ("nmap", "probe"),
    ("portsweep", "probe"),
    ("satan", "probe"),
    ("mscan", "probe"),
    ("saint", "probe"),
    ("ftp_write", "r2l"),
    ("guess_passwd", "r2l"),
    ("imap", "r2l"),
    ("multihop", "r2l"),
    ("phf", "r2l"),
    ("spy", "r2l"),
    ("warezclient", "r2l"),
    ("warezmaster", "r2l"),
    ("named", "r2l"),
    ("sendmail", "r2l"),
    ("snmpgetattack", "r2l"),
    ("snmpguess", "r2l"),
    ("xlock", "r2l"),
    ("xsnoop", "r2l"),
    ("worm", "r2l"),
    ("buffer_overflow", "u2r"),
    ("loadmodule", "u2r"),
    ("perl", "u2r"),
    ("rootkit", "u2r"),
    ("ps", "u2r"),
    ("sqlattack", "u2r"),
    ("xterm", "u2r"),
    ("httptunnel", "u2r"),
];

pub fn nsl_kdd_raw_classes() -> Vec<RawClass> {
    NSL_KDD_ATTACKS
        .iter()
        .map(|(name, family)| RawClass::new(name, name, family, *name == "normal"))
        .collect()
}

/// Whether a free-form raw label means benign traffic.
pub fn is_benign_label(raw: &str) -> bool {
    let raw = raw.trim();
    ["0", "benign", "normal", "0.0", "false"]
        .iter()
        .any(|b| raw.eq_ignore_ascii_case(b))
}

/// Raw classes discovered in a generic file: benign first, then sorted, so the same label set
/// gives the same ids whatever the row order.
pub fn generic_raw_classes(mut seen: Vec<String>) -> Vec<RawClass> {
    seen.sort_by(|a, b| {
        is_benign_label(b)
            .cmp(&is_benign_label(a))
            .then_with(|| natural_order(a, b))
    });
    seen.dedup();
    seen.iter()
        .map(|l| RawClass::new(l, l, l, is_benign_label(l)))
        .collect()
}

/// Numeric labels in numeric order (`2` before `10`), others lexicographic.
fn natural_order(a: &str, b: &str) -> std::cmp::Ordering {
    match (a.parse::<f64>(), b.parse::<f64>()) {
        (Ok(x), Ok(y)) => x.total_cmp(&y),
        _ => a.cmp(b),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn binary_maps_every_attack_to_one() {
        let map = LabelMap::build(LabelMode::Binary, nsl_kdd_raw_classes());
        assert_eq!(map.classes, ["benign", "attack"]);
        let normal = map.raw_id("normal").unwrap();
        let smurf = map.raw_id("smurf").unwrap();
        assert_eq!(map.raw_to_class[normal as usize], 0);
        assert_eq!(map.raw_to_class[smurf as usize], 1);
    }

    #[test]
    fn family_mode_has_five_nsl_kdd_classes_with_normal_first() {
        let map = LabelMap::build(LabelMode::Family, nsl_kdd_raw_classes());
        assert_eq!(map.classes, ["normal", "dos", "probe", "r2l", "u2r"]);
        let satan = map.raw_id("satan").unwrap();
        assert_eq!(
            map.classes[map.raw_to_class[satan as usize] as usize],
            "probe"
        );
    }

    #[test]
    fn generic_classes_put_benign_first_and_sort_numbers_numerically() {
        let raw = generic_raw_classes(vec!["10".into(), "2".into(), "0".into(), "2".into()]);
        let labels: Vec<&str> = raw.iter().map(|r| r.label.as_str()).collect();
        assert_eq!(labels, ["0", "2", "10"]);
        assert!(raw[0].benign && !raw[1].benign);
    }
}
