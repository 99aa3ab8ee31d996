//! The model families, selectable by name.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// One of the model families nadir can train (names as the CLI spells them).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ModelKind {
    /// LLAFormerNet (seeds-spec §1.3): Conv1D + LSTM + gated "attention" + dilated causal conv, per-flow.
    Llaformer,
    /// LLN-style (§2.4 substitute): Conv1D x2 + BiLSTM + multi-head self-attention over packet windows.
    Lln,
    /// Hybrid (§3.2): LSTM + additive attention + Transformer block over a sequence of flows.
    Hybrid,
    /// CNN-LSTM (§5.1): Conv1d x2 + BN + pool + LSTM over (C, L) windows.
    CnnLstm,
    /// LDPI (§4.3): separable ResCNN encoder + projection head over the first bytes of a flow.
    Ldpi,
    /// Dense autoencoder: dimensionality reduction (`encode`) and reconstruction-error scoring.
    Autoencoder,
    /// TabM-mini: k MLPs sharing their hidden weights (parameter-efficient ensembling), for
    /// tabular flow features.
    Tabm,
    /// Gradient-boosted trees (forust-ml) on tabular flow features: what practitioners reach
    /// for first; explained with exact TreeSHAP.
    Gbdt,
    /// gbdt and a neural family (the hybrid by default) trained on the same rows; scores are
    /// the log-odds of the mean of their P(attack).
    Ensemble,
}

impl ModelKind {
    /// Every family, in a stable order.
    pub const ALL: [ModelKind; 9] = [
        ModelKind::Llaformer,
        ModelKind::Lln,
        ModelKind::Hybrid,
        ModelKind::CnnLstm,
        ModelKind::Ldpi,
        ModelKind::Autoencoder,
        ModelKind::Tabm,
        ModelKind::Gbdt,
        ModelKind::Ensemble,
    ];

    /// The name used on the command line and in config files.
    pub fn name(self) -> &'static str {
        match self {
            ModelKind::Llaformer => "llaformer",
            ModelKind::Lln => "lln",
            ModelKind::Hybrid => "hybrid",
            ModelKind::CnnLstm => "cnn-lstm",
            ModelKind::Ldpi => "ldpi",
            ModelKind::Autoencoder => "autoencoder",
            ModelKind::Tabm => "tabm",
            ModelKind::Gbdt => "gbdt",
            ModelKind::Ensemble => "ensemble",
        }
    }

    /// Every family's name, comma-separated (for messages that list them).
    pub fn names() -> String {
        Self::ALL.map(Self::name).join(", ")
    }

    /// True for the families that classify (all but the autoencoder).
    pub fn is_classifier(self) -> bool {
        self != ModelKind::Autoencoder
    }

    /// True for the neural families (burn networks); false for trees and the ensemble.
    pub fn is_network(self) -> bool {
        !matches!(self, ModelKind::Gbdt | ModelKind::Ensemble)
    }
}

impl fmt::Display for ModelKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A model name that is not one of [`ModelKind::ALL`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown model `{given}`; expected one of: {}", ModelKind::names())]
pub struct UnknownModelKind {
    /// The name as given.
    pub given: String,
}

impl FromStr for ModelKind {
    type Err = UnknownModelKind;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let normalised = s.trim().to_ascii_lowercase().replace('_', "-");
        ModelKind::ALL
            .into_iter()
            .find(|kind| kind.name() == normalised)
            .ok_or_else(|| UnknownModelKind {
                given: s.to_string(),
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_through_from_str_and_display() {
        for kind in ModelKind::ALL {
            assert_eq!(kind.to_string().parse::<ModelKind>(), Ok(kind));
        }
        assert_eq!("CNN_LSTM".parse::<ModelKind>(), Ok(ModelKind::CnnLstm));
        let err = "transformer".parse::<ModelKind>().unwrap_err();
        assert!(err.to_string().contains("transformer"));
        assert!(err.to_string().ends_with("tabm, gbdt, ensemble"), "{err}");
    }
}
