//! Column names of the Kubernetes misuse dataset (GintsEngelen CICFlowMeter fork @ 273d097).

/// The 87 columns, in order, exactly as the dataset's header spells them.
pub const CIC_COLUMNS: [&str; 87] = [
    "Flow ID",
    "Src IP",
    "Src Port",
    "Dst IP",
    "Dst Port",
    "Protocol",
    "Timestamp",
    "Flow Duration",
    "Total Fwd Packet",
    "Total Bwd packets",
    "Total Length of Fwd Packet",
    "Total Length of Bwd Packet",
    "Fwd Packet Length Max",
    "Fwd Packet Length Min",
    "Fwd Packet Length Mean",
    "Fwd Packet Length Std",
    "Bwd Packet Length Max",
    "Bwd Packet Length Min",
    "Bwd Packet Length Mean",
    "Bwd Packet Length Std",
    "Flow Bytes/s",
    "Flow Packets/s",
    "Flow IAT Mean",
    "Flow IAT Std",
    "Flow IAT Max",
    "Flow IAT Min",
    "Fwd IAT Total",
    "Fwd IAT Mean",
    "Fwd IAT Std",
    "Fwd IAT Max",
    "Fwd IAT Min",
    "Bwd IAT Total",
    "Bwd IAT Mean",
    "Bwd IAT Std",
    "Bwd IAT Max",
    "Bwd IAT Min",
    "Fwd PSH Flags",
    "Bwd PSH Flags",
    "Fwd URG Flags",
    "Bwd URG Flags",
    "Fwd RST Flags",
    "Bwd RST Flags",
    "Fwd Header Length",
    "Bwd Header Length",
    "Fwd Packets/s",
    "Bwd Packets/s",
    "Packet Length Min",
    "Packet Length Max",
    "Packet Length Mean",
    "Packet Length Std",
    "Packet Length Variance",
    "FIN Flag Count",
    "SYN Flag Count",
    "RST Flag Count",
    "PSH Flag Count",
    "ACK Flag Count",
    "URG Flag Count",
    "CWR Flag Count",
    "ECE Flag Count",
    "Down/Up Ratio",
    "Average Packet Size",
    "Fwd Segment Size Avg",
    "Bwd Segment Size Avg",
    "Fwd Bytes/Bulk Avg",
    "Fwd Packet/Bulk Avg",
    "Fwd Bulk Rate Avg",
    "Bwd Bytes/Bulk Avg",
    "Bwd Packet/Bulk Avg",
    "Bwd Bulk Rate Avg",
    "Subflow Fwd Packets",
    "Subflow Fwd Bytes",
    "Subflow Bwd Packets",
    "Subflow Bwd Bytes",
    "FWD Init Win Bytes",
    "Bwd Init Win Bytes",
    "Fwd Act Data Pkts",
    "Fwd Seg Size Min",
    "Active Mean",
    "Active Std",
    "Active Max",
    "Active Min",
    "Idle Mean",
    "Idle Std",
    "Idle Max",
    "Idle Min",
    "Total TCP Flow Time",
    "Label",
];

/// Index of a column in [`CIC_COLUMNS`] from its exact (dataset) spelling.
pub fn column_index(name: &str) -> Option<usize> {
    CIC_COLUMNS.iter().position(|c| *c == name.trim())
}

/// Other public spellings of the same quantities (seeds-spec §6.2.9), as
/// (alias, canonical dataset name). Leading/trailing spaces are ignored when
/// matching, so CIC-IDS2017's ` Flow Duration` needs no entry of its own.
pub const CIC_COLUMN_ALIASES: &[(&str, &str)] = &[
    // CIC-IDS2017 (MachineLearningCVE / GeneratedLabelledFlows) long names.
    ("Source IP", "Src IP"),
    ("Source Port", "Src Port"),
    ("Destination IP", "Dst IP"),
    ("Destination Port", "Dst Port"),
    ("Total Fwd Packets", "Total Fwd Packet"),
    ("Total Backward Packets", "Total Bwd packets"),
    ("Total Length of Fwd Packets", "Total Length of Fwd Packet"),
    ("Total Length of Bwd Packets", "Total Length of Bwd Packet"),
    ("Min Packet Length", "Packet Length Min"),
    ("Max Packet Length", "Packet Length Max"),
    ("CWE Flag Count", "CWR Flag Count"),
    ("Avg Fwd Segment Size", "Fwd Segment Size Avg"),
    ("Avg Bwd Segment Size", "Bwd Segment Size Avg"),
    ("Fwd Header Length.1", "Fwd Header Length"),
    ("Fwd Avg Bytes/Bulk", "Fwd Bytes/Bulk Avg"),
    ("Fwd Avg Packets/Bulk", "Fwd Packet/Bulk Avg"),
    ("Fwd Avg Bulk Rate", "Fwd Bulk Rate Avg"),
    ("Bwd Avg Bytes/Bulk", "Bwd Bytes/Bulk Avg"),
    ("Bwd Avg Packets/Bulk", "Bwd Packet/Bulk Avg"),
    ("Bwd Avg Bulk Rate", "Bwd Bulk Rate Avg"),
    ("Init_Win_bytes_forward", "FWD Init Win Bytes"),
    ("Init_Win_bytes_backward", "Bwd Init Win Bytes"),
    ("act_data_pkt_fwd", "Fwd Act Data Pkts"),
    ("min_seg_size_forward", "Fwd Seg Size Min"),
    // CSE-CIC-IDS2018 / CICFlowMeter-V3 short names.
    ("Tot Fwd Pkts", "Total Fwd Packet"),
    ("Tot Bwd Pkts", "Total Bwd packets"),
    ("TotLen Fwd Pkts", "Total Length of Fwd Packet"),
    ("TotLen Bwd Pkts", "Total Length of Bwd Packet"),
    ("Fwd Pkt Len Max", "Fwd Packet Length Max"),
    ("Fwd Pkt Len Min", "Fwd Packet Length Min"),
    ("Fwd Pkt Len Mean", "Fwd Packet Length Mean"),
    ("Fwd Pkt Len Std", "Fwd Packet Length Std"),
    ("Bwd Pkt Len Max", "Bwd Packet Length Max"),
    ("Bwd Pkt Len Min", "Bwd Packet Length Min"),
    ("Bwd Pkt Len Mean", "Bwd Packet Length Mean"),
    ("Bwd Pkt Len Std", "Bwd Packet Length Std"),
    ("Flow Byts/s", "Flow Bytes/s"),
    ("Flow Pkts/s", "Flow Packets/s"),
    ("Fwd IAT Tot", "Fwd IAT Total"),
    ("Bwd IAT Tot", "Bwd IAT Total"),
    ("Fwd Header Len", "Fwd Header Length"),
    ("Bwd Header Len", "Bwd Header Length"),
    ("Fwd Pkts/s", "Fwd Packets/s"),
    ("Bwd Pkts/s", "Bwd Packets/s"),
    ("Pkt Len Min", "Packet Length Min"),
    ("Pkt Len Max", "Packet Length Max"),
    ("Pkt Len Mean", "Packet Length Mean"),
    ("Pkt Len Std", "Packet Length Std"),
    ("Pkt Len Var", "Packet Length Variance"),
    ("FIN Flag Cnt", "FIN Flag Count"),
    ("SYN Flag Cnt", "SYN Flag Count"),
    ("RST Flag Cnt", "RST Flag Count"),
    ("PSH Flag Cnt", "PSH Flag Count"),
    ("ACK Flag Cnt", "ACK Flag Count"),
    ("URG Flag Cnt", "URG Flag Count"),
    ("CWR Flag Cnt", "CWR Flag Count"),
    ("ECE Flag Cnt", "ECE Flag Count"),
    ("Pkt Size Avg", "Average Packet Size"),
    ("Fwd Seg Size Avg", "Fwd Segment Size Avg"),
    ("Bwd Seg Size Avg", "Bwd Segment Size Avg"),
    ("Fwd Byts/b Avg", "Fwd Bytes/Bulk Avg"),
    ("Fwd Pkts/b Avg", "Fwd Packet/Bulk Avg"),
    ("Fwd Blk Rate Avg", "Fwd Bulk Rate Avg"),
    ("Bwd Byts/b Avg", "Bwd Bytes/Bulk Avg"),
    ("Bwd Pkts/b Avg", "Bwd Packet/Bulk Avg"),
    ("Bwd Blk Rate Avg", "Bwd Bulk Rate Avg"),
    ("Subflow Fwd Pkts", "Subflow Fwd Packets"),
    ("Subflow Fwd Byts", "Subflow Fwd Bytes"),
    ("Subflow Bwd Pkts", "Subflow Bwd Packets"),
    ("Subflow Bwd Byts", "Subflow Bwd Bytes"),
    ("Init Fwd Win Byts", "FWD Init Win Bytes"),
    ("Init Bwd Win Byts", "Bwd Init Win Bytes"),
    // Fork HEAD (late 2023) renamed the last feature.
    ("Total Connection Flow Time", "Total TCP Flow Time"),
];

/// Index in [`CIC_COLUMNS`] of any public spelling of a column: the dataset's own,
/// CIC-IDS2017 long names (leading spaces, `Fwd Header Length.1`), CSE-CIC-IDS2018
/// short names. Surrounding spaces are ignored; a case-insensitive match is the
/// last resort. `None` for names no CICFlowMeter version uses.
pub fn canonical_column(name: &str) -> Option<usize> {
    let name = name.trim();
    if let Some(i) = column_index(name) {
        return Some(i);
    }
    let alias = |n: &str| {
        CIC_COLUMN_ALIASES
            .iter()
            .find(|(a, _)| *a == n)
            .and_then(|(_, c)| column_index(c))
    };
    if let Some(i) = alias(name) {
        return Some(i);
    }
    CIC_COLUMNS
        .iter()
        .position(|c| c.eq_ignore_ascii_case(name))
        .or_else(|| {
            CIC_COLUMN_ALIASES
                .iter()
                .find(|(a, _)| a.eq_ignore_ascii_case(name))
                .and_then(|(_, c)| column_index(c))
        })
}

/// True for a spelling that repeats another column of the same file (CIC-IDS2017's
/// `Fwd Header Length.1`): readers should drop it rather than overwrite.
pub fn is_duplicate_column(name: &str) -> bool {
    name.trim() == "Fwd Header Length.1"
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_alias_names_a_real_column() {
        for (alias, canonical) in CIC_COLUMN_ALIASES {
            assert!(
                column_index(canonical).is_some(),
                "{alias} -> {canonical} is not a dataset column"
            );
            assert_eq!(canonical_column(alias), column_index(canonical));
        }
    }

    #[test]
    fn public_spellings_map_to_the_dataset_column() {
        let idx = |n: &str| column_index(n).unwrap_or(usize::MAX);
        assert_eq!(
            canonical_column(" Total Backward Packets"),
            Some(idx("Total Bwd packets"))
        );
        assert_eq!(canonical_column(" Destination Port"), Some(idx("Dst Port")));
        assert_eq!(
            canonical_column(" Fwd Header Length.1"),
            Some(idx("Fwd Header Length"))
        );
        assert!(is_duplicate_column(" Fwd Header Length.1"));
        assert!(!is_duplicate_column("Fwd Header Length"));
        assert_eq!(
            canonical_column("Tot Fwd Pkts"),
            Some(idx("Total Fwd Packet"))
        );
        assert_eq!(
            canonical_column("CWE Flag Count"),
            Some(idx("CWR Flag Count"))
        );
        assert_eq!(
            canonical_column("Init Bwd Win Byts"),
            Some(idx("Bwd Init Win Bytes"))
        );
        assert_eq!(
            canonical_column("flow duration"),
            Some(idx("Flow Duration"))
        );
        assert_eq!(canonical_column(" Label"), Some(86));
        assert_eq!(canonical_column("not a column"), None);
    }

    #[test]
    fn slowloris_header_maps_completely() {
        // The 84 columns of labelled/kihy-slowloris (CICFlowMeter-V3 short names).
        let header = "Flow ID,Src IP,Src Port,Dst IP,Dst Port,Protocol,Timestamp,Flow Duration,Tot Fwd Pkts,Tot Bwd Pkts,TotLen Fwd Pkts,TotLen Bwd Pkts,Fwd Pkt Len Max,Fwd Pkt Len Min,Fwd Pkt Len Mean,Fwd Pkt Len Std,Bwd Pkt Len Max,Bwd Pkt Len Min,Bwd Pkt Len Mean,Bwd Pkt Len Std,Flow Byts/s,Flow Pkts/s,Flow IAT Mean,Flow IAT Std,Flow IAT Max,Flow IAT Min,Fwd IAT Tot,Fwd IAT Mean,Fwd IAT Std,Fwd IAT Max,Fwd IAT Min,Bwd IAT Tot,Bwd IAT Mean,Bwd IAT Std,Bwd IAT Max,Bwd IAT Min,Fwd PSH Flags,Bwd PSH Flags,Fwd URG Flags,Bwd URG Flags,Fwd Header Len,Bwd Header Len,Fwd Pkts/s,Bwd Pkts/s,Pkt Len Min,Pkt Len Max,Pkt Len Mean,Pkt Len Std,Pkt Len Var,FIN Flag Cnt,SYN Flag Cnt,RST Flag Cnt,PSH Flag Cnt,ACK Flag Cnt,URG Flag Cnt,CWE Flag Count,ECE Flag Cnt,Down/Up Ratio,Pkt Size Avg,Fwd Seg Size Avg,Bwd Seg Size Avg,Fwd Byts/b Avg,Fwd Pkts/b Avg,Fwd Blk Rate Avg,Bwd Byts/b Avg,Bwd Pkts/b Avg,Bwd Blk Rate Avg,Subflow Fwd Pkts,Subflow Fwd Byts,Subflow Bwd Pkts,Subflow Bwd Byts,Init Fwd Win Byts,Init Bwd Win Byts,Fwd Act Data Pkts,Fwd Seg Size Min,Active Mean,Active Std,Active Max,Active Min,Idle Mean,Idle Std,Idle Max,Idle Min,Label";
        let mapped: Vec<usize> = header.split(',').filter_map(canonical_column).collect();
        assert_eq!(mapped.len(), 84);
        let mut unique = mapped.clone();
        unique.sort_unstable();
        unique.dedup();
        assert_eq!(unique.len(), 84, "two names mapped to one column");
    }
}
