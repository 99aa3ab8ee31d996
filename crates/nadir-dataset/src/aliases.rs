//! Recognising the public CICFlowMeter header variants (seeds-spec §6.2.9) and renaming their
//! columns to the Kubernetes-dataset / nadir `cic` spelling, with the alias table of
//! `nadir_features::cic::columns`.

use nadir_features::cic::columns::{canonical_column, is_duplicate_column, CIC_COLUMNS};

use crate::schema::KnownSchema;

/// Names only the CSE-CIC-IDS2018 / CICFlowMeter-V3 short header uses.
const CSE_CIC_IDS2018_MARKERS: &[&str] = &[
    "Tot Fwd Pkts",
    "Flow Byts/s",
    "Fwd Pkt Len Max",
    "Pkt Len Var",
    "Init Fwd Win Byts",
];
/// Names only the CIC-IDS2017 `MachineLearningCSV` long header uses.
const CIC_IDS2017_MARKERS: &[&str] = &[
    "Total Backward Packets",
    "Total Fwd Packets",
    "Destination Port",
    "Init_Win_bytes_forward",
    "Fwd Header Length.1",
];

/// Whether a column is a copy of another in its file (CIC-IDS2017's `Fwd Header Length.1`).
pub fn is_duplicate(name: &str) -> bool {
    is_duplicate_column(name)
}

/// The canonical spelling of a header name, if it is a CICFlowMeter column in any variant.
pub fn canonical_cic_name(name: &str) -> Option<&'static str> {
    canonical_column(name).and_then(|i| CIC_COLUMNS.get(i).copied())
}

/// Recognises a header; returns the schema and the header renamed to canonical names (names
/// that are not CICFlowMeter columns, and duplicates, are kept as written, trimmed).
pub fn recognise_header(header: &[String]) -> (KnownSchema, Vec<String>) {
    let trimmed: Vec<&str> = header.iter().map(|h| h.trim()).collect();
    let has_any = |markers: &[&str]| {
        trimmed
            .iter()
            .any(|h| markers.iter().any(|m| m.eq_ignore_ascii_case(h)))
    };
    let exact = trimmed.iter().filter(|h| CIC_COLUMNS.contains(h)).count();
    let schema = if exact == CIC_COLUMNS.len() && header.len() == CIC_COLUMNS.len() {
        KnownSchema::KubernetesMisuse
    } else if has_any(CSE_CIC_IDS2018_MARKERS) {
        KnownSchema::CseCicIds2018
    } else if has_any(CIC_IDS2017_MARKERS) || exact >= 60 {
        // CIC-IDS2017 CSVs, or CICFlowMeter-4.0 output (the long names without the fork's
        // three extra columns).
        KnownSchema::CicIds2017
    } else {
        KnownSchema::Generic
    };
    let renamed = trimmed
        .iter()
        .map(|h| match schema {
            KnownSchema::Generic | KnownSchema::NslKdd => h.to_string(),
            _ if is_duplicate(h) => h.to_string(),
            _ => canonical_cic_name(h).map_or_else(|| h.to_string(), str::to_string),
        })
        .collect();
    (schema, renamed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_and_long_names_are_recognised_and_renamed() {
        let short: Vec<String> = [
            " Dst Port",
            "Tot Fwd Pkts",
            "CWE Flag Count",
            "Flow Byts/s",
            "Label",
        ]
        .map(String::from)
        .to_vec();
        let (schema, renamed) = recognise_header(&short);
        assert_eq!(schema, KnownSchema::CseCicIds2018);
        assert_eq!(
            renamed,
            [
                "Dst Port",
                "Total Fwd Packet",
                "CWR Flag Count",
                "Flow Bytes/s",
                "Label"
            ]
        );
        let long: Vec<String> = [
            " Destination Port",
            " Total Backward Packets",
            " Fwd Header Length",
            " Fwd Header Length.1",
            " Label",
        ]
        .map(String::from)
        .to_vec();
        let (schema, renamed) = recognise_header(&long);
        assert_eq!(schema, KnownSchema::CicIds2017);
        assert_eq!(
            renamed,
            [
                "Dst Port",
                "Total Bwd packets",
                "Fwd Header Length",
                "Fwd Header Length.1",
                "Label"
            ]
        );
        let generic: Vec<String> = ["a", "b", "label"].map(String::from).to_vec();
        assert_eq!(recognise_header(&generic).0, KnownSchema::Generic);
    }
}
