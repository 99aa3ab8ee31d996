//! Hyperparameters per model family, in TOML, with defaults equal to the published designs.
//!
//! A [`ModelConfig`] is plain data (serde); [`ModelConfig::check`] validates it against its input
//! shape into a [`CheckedConfig`], the only thing a network can be built from (linfa's
//! param-guard idea): impossible shapes fail here, before any training starts.

use std::ops::Deref;

use serde::{Deserialize, Serialize};

use crate::{InputShape, ModelError, ModelKind};

/// How the network turns its last layer into scores.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Head {
    /// One logit, sigmoid, binary cross-entropy: P(class 1). Needs exactly 2 classes. Scores
    /// are the logit (log-odds of attack).
    Sigmoid,
    /// `n_classes` logits, softmax, cross-entropy. Scores are the log-odds of "not benign".
    Softmax,
    /// The autoencoder's reconstruction; scores are reconstruction errors.
    Reconstruction,
    /// Deep SAD (LDPI, seeds-spec §4.5): the squared distance of the embedding to a fixed
    /// centre; normal traffic lies inside the sphere. Scores are those distances.
    Hypersphere,
}

impl Head {
    /// What this head's anomaly score is, in words (for reports: thresholds are in its units).
    pub fn score_meaning(self) -> &'static str {
        match self {
            Head::Sigmoid => "log-odds of attack (0 = even odds)",
            Head::Softmax => "log-odds of not benign (0 = even odds)",
            Head::Reconstruction => "mean squared reconstruction error",
            Head::Hypersphere => "squared distance to the Deep SAD centre",
        }
    }
}

/// A model family with its hyperparameters, input shape and head.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelConfig {
    /// Number of classes (2 for benign/attack); ignored by the autoencoder.
    pub n_classes: usize,
    /// Output head.
    pub head: Head,
    /// Shape of one input sample.
    pub input: InputShape,
    /// The family and its hyperparameters.
    pub arch: ArchConfig,
}

/// Per-family hyperparameters; the TOML table `[arch]` names the family with `kind = "..."`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum ArchConfig {
    Llaformer(LlaformerConfig),
    Lln(LlnConfig),
    Hybrid(HybridConfig),
    CnnLstm(CnnLstmConfig),
    Ldpi(LdpiConfig),
    Autoencoder(AutoencoderConfig),
    Tabm(TabmConfig),
    Gbdt(GbdtConfig),
    Ensemble(EnsembleConfig),
}

/// LLAFormerNet, seeds-spec §1.3 (13,825 parameters for F = 89).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LlaformerConfig {
    pub conv_filters: usize,
    pub kernel_size: usize,
    pub lstm_units: usize,
    /// Dilation of the causal "TCN" convolution.
    pub tcn_dilation: usize,
    /// Keras LayerNormalization default.
    pub layer_norm_eps: f64,
    pub dropout: f64,
}

impl Default for LlaformerConfig {
    fn default() -> Self {
        Self {
            conv_filters: 32,
            kernel_size: 3,
            lstm_units: 32,
            tcn_dilation: 2,
            layer_norm_eps: 1e-3,
            dropout: 0.3,
        }
    }
}

/// LLN-style network, seeds-spec §2.4 [REC] (the original `model.py` is lost).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LlnConfig {
    pub conv1_filters: usize,
    pub conv2_filters: usize,
    pub kernel_size: usize,
    pub pool: usize,
    /// Units per direction of the bidirectional LSTM.
    pub lstm_units: usize,
    pub heads: usize,
    pub key_dim: usize,
    pub dense_units: usize,
    pub dropout: f64,
    pub batch_norm_eps: f64,
    pub layer_norm_eps: f64,
}

impl Default for LlnConfig {
    fn default() -> Self {
        Self {
            conv1_filters: 64,
            conv2_filters: 128,
            kernel_size: 3,
            pool: 2,
            lstm_units: 64,
            heads: 4,
            key_dim: 32,
            dense_units: 64,
            dropout: 0.3,
            batch_norm_eps: 1e-3,
            layer_norm_eps: 1e-3,
        }
    }
}

/// Hybrid LSTM + additive attention + Transformer block, seeds-spec §3.2 (102,530 parameters for F = 10).
///
/// On tabular input the sequence has length 1, as published: the additive attention is then an
/// identity and the multi-head attention a linear map. Feed windows of k > 1 consecutive flows
/// (`InputShape::Windows { channels: F, length: k }`) for attention over time; with
/// `sequence_transformer = true` the Transformer block also runs over the k steps before pooling.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct HybridConfig {
    pub lstm_units: usize,
    pub attention_dropout: f64,
    pub heads: usize,
    /// Keras `key_dim`: per-head width, independent of the model width (64 as published).
    pub key_dim: usize,
    pub ffn_units: usize,
    pub layer_norm_eps: f64,
    pub sequence_transformer: bool,
}

impl Default for HybridConfig {
    fn default() -> Self {
        Self {
            lstm_units: 64,
            attention_dropout: 0.2,
            heads: 4,
            key_dim: 64,
            ffn_units: 128,
            layer_norm_eps: 1e-6,
            sequence_transformer: false,
        }
    }
}

/// CNN-LSTM, seeds-spec §5.1 (≈299.6 k parameters for C = 6, 2 classes).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CnnLstmConfig {
    pub conv1_channels: usize,
    pub conv2_channels: usize,
    pub kernel_size: usize,
    /// Zero padding on each side of both convolutions (1 keeps the length for kernel 3).
    pub padding: usize,
    pub pool: usize,
    pub lstm_hidden: usize,
    pub lstm_layers: usize,
    pub dropout: f64,
}

impl Default for CnnLstmConfig {
    fn default() -> Self {
        Self {
            conv1_channels: 128,
            conv2_channels: 256,
            kernel_size: 3,
            padding: 1,
            pool: 2,
            lstm_hidden: 128,
            lstm_layers: 1,
            dropout: 0.3,
        }
    }
}

/// LDPI ResCNN encoder + projection head, seeds-spec §4.3 (168,520 parameters), with a linear
/// classifier on the 128-d embedding for supervised training.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LdpiConfig {
    /// Output channels of the four encoder blocks.
    pub block_channels: [usize; 4],
    /// Kernels of the three separable convolutions of block 1 (blocks 2-4 use the last one).
    pub block1_kernels: [usize; 3],
    /// Hidden layers of the projection head (Linear without bias + BatchNorm + ReLU each).
    pub head_layers: usize,
    pub embedding_dim: usize,
    pub leaky_relu_slope: f64,
    pub elu_alpha: f64,
}

impl Default for LdpiConfig {
    fn default() -> Self {
        Self {
            block_channels: [64, 128, 256, 128],
            block1_kernels: [7, 5, 3],
            head_layers: 4,
            embedding_dim: 128,
            leaky_relu_slope: 0.2,
            elu_alpha: 0.3,
        }
    }
}

/// Decoder output activation of the autoencoder.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum DecoderOutput {
    /// Identity: right for z-scored (unbounded) inputs.
    Linear,
    /// Sigmoid, as in seeds-spec §3.1 step 5; only right for inputs in [0, 1].
    Sigmoid,
}

/// TabM-mini (Gorishniy et al. 2024): `members` MLPs of `blocks` ReLU layers of `width` that
/// share their hidden weights. The paper's backbone is 3 x 512 with 32 members and dropout
/// 0.1; width 256 here keeps an epoch on 2 cores within seconds (chosen for cost, not on any
/// test set). By default each feature first goes through its own learnt periodic embedding
/// (`embedding = "periodic"`, on quantile-scaled columns); `embedding = "none"` is the paper's
/// TabM-mini on the fixed piecewise-linear encoding.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TabmConfig {
    pub members: usize,
    pub blocks: usize,
    pub width: usize,
    pub dropout: f64,
    pub embedding: TabmEmbedding,
    /// The periodic embeddings' sizes (`[arch.periodic]`), used with `embedding = "periodic"`.
    pub periodic: PeriodicConfig,
}

impl Default for TabmConfig {
    fn default() -> Self {
        Self {
            members: 32,
            blocks: 3,
            width: 256,
            dropout: 0.1,
            embedding: TabmEmbedding::Periodic,
            periodic: PeriodicConfig::default(),
        }
    }
}

/// What TabM reads of each feature.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum TabmEmbedding {
    /// The preprocessed columns as they are (the paper's TabM-mini: a piecewise-linear encoding).
    None,
    /// [`PeriodicConfig`] per feature, learnt with the rest (Kubernetes scenario-disjoint
    /// ROC-AUC 0.745 vs 0.696 with the fixed encoding: README).
    Periodic,
}

/// Periodic embeddings (Gorishniy et al. 2022, "PLR"): each feature x becomes
/// `ReLU(W_f [cos(2π c_f x), sin(2π c_f x)] + b_f)`, with its own learnt frequencies `c_f` and
/// its own linear layer, so the network learns a nonlinear encoding per feature instead of
/// reading one scaled number. Frequencies start from N(0, `scale`), clamped at 3 `scale`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PeriodicConfig {
    pub frequencies: usize,
    pub dim: usize,
    /// rtdl's default is 0.01 for standardised inputs; nadir's scalers map into [0, 1], where
    /// 1.0 lets the starting frequencies span about one period over a feature's range
    /// (chosen before measuring).
    pub scale: f64,
}

impl Default for PeriodicConfig {
    fn default() -> Self {
        // rtdl-num-embeddings' defaults: 48 frequencies, 24 dimensions.
        Self {
            frequencies: 48,
            dim: 24,
            scale: 1.0,
        }
    }
}

/// Dense autoencoder: F -> hidden... -> code (ReLU) -> hidden reversed... -> F.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AutoencoderConfig {
    /// Hidden widths between the input and the code (mirrored in the decoder); empty as published.
    pub hidden: Vec<usize>,
    /// Width of the code (`encode` output); 10 as published.
    pub code_dim: usize,
    pub decoder_output: DecoderOutput,
    /// Train only on class-0 (benign) samples, so reconstruction error scores anomalies.
    pub benign_only: bool,
}

impl Default for AutoencoderConfig {
    fn default() -> Self {
        Self {
            hidden: Vec::new(),
            code_dim: 10,
            decoder_output: DecoderOutput::Linear,
            benign_only: true,
        }
    }
}

/// Gradient-boosted trees (forust-ml). The defaults follow scikit-learn's
/// `HistGradientBoostingClassifier` (100 iterations, learning rate 0.1, 31 leaves, 255 bins,
/// L2 0 there, 1 here as forust's default) with a depth cap of 8; they were not tuned on any
/// test set.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct GbdtConfig {
    /// Boosting rounds (trees).
    pub iterations: usize,
    pub learning_rate: f32,
    pub max_depth: usize,
    pub max_leaves: usize,
    /// L2 penalty on leaf weights.
    pub l2: f32,
    /// Smallest hessian sum in a leaf.
    pub min_leaf_weight: f32,
    /// Histogram bins per feature.
    pub bins: u16,
}

impl Default for GbdtConfig {
    fn default() -> Self {
        Self {
            iterations: 100,
            learning_rate: 0.1,
            max_depth: 8,
            max_leaves: 31,
            l2: 1.0,
            min_leaf_weight: 1.0,
            bins: 255,
        }
    }
}

/// Trees and a network trained on the same rows; the score is the log-odds of the mean of
/// their P(attack) (soft voting). Trees are invariant to the monotone scaling the pipeline applies, so both
/// read the same preprocessed rows.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct EnsembleConfig {
    pub trees: GbdtConfig,
    /// The network member (`[arch.network]`, with its own `kind`); the hybrid by default.
    pub network: Box<ArchConfig>,
}

impl Default for EnsembleConfig {
    fn default() -> Self {
        Self {
            trees: GbdtConfig::default(),
            network: Box::new(ArchConfig::default_for(ModelKind::Hybrid)),
        }
    }
}

impl ArchConfig {
    /// The published hyperparameters of `kind`.
    pub fn default_for(kind: ModelKind) -> Self {
        match kind {
            ModelKind::Llaformer => ArchConfig::Llaformer(LlaformerConfig::default()),
            ModelKind::Lln => ArchConfig::Lln(LlnConfig::default()),
            ModelKind::Hybrid => ArchConfig::Hybrid(HybridConfig::default()),
            ModelKind::CnnLstm => ArchConfig::CnnLstm(CnnLstmConfig::default()),
            ModelKind::Ldpi => ArchConfig::Ldpi(LdpiConfig::default()),
            ModelKind::Autoencoder => ArchConfig::Autoencoder(AutoencoderConfig::default()),
            ModelKind::Tabm => ArchConfig::Tabm(TabmConfig::default()),
            ModelKind::Gbdt => ArchConfig::Gbdt(GbdtConfig::default()),
            ModelKind::Ensemble => ArchConfig::Ensemble(EnsembleConfig::default()),
        }
    }

    /// The family these hyperparameters belong to.
    pub fn kind(&self) -> ModelKind {
        match self {
            ArchConfig::Llaformer(_) => ModelKind::Llaformer,
            ArchConfig::Lln(_) => ModelKind::Lln,
            ArchConfig::Hybrid(_) => ModelKind::Hybrid,
            ArchConfig::CnnLstm(_) => ModelKind::CnnLstm,
            ArchConfig::Ldpi(_) => ModelKind::Ldpi,
            ArchConfig::Autoencoder(_) => ModelKind::Autoencoder,
            ArchConfig::Tabm(_) => ModelKind::Tabm,
            ArchConfig::Gbdt(_) => ModelKind::Gbdt,
            ArchConfig::Ensemble(_) => ModelKind::Ensemble,
        }
    }
}

impl ModelConfig {
    /// Published defaults of `kind` for `input` and `n_classes`: a sigmoid head for two classes
    /// (softmax for `cnn-lstm`, which the design trains with cross-entropy), softmax for more.
    pub fn default_for(kind: ModelKind, input: InputShape, n_classes: usize) -> Self {
        let head = match kind {
            ModelKind::Autoencoder => Head::Reconstruction,
            ModelKind::CnnLstm => Head::Softmax,
            _ if n_classes == 2 => Head::Sigmoid,
            _ => Head::Softmax,
        };
        Self {
            n_classes,
            head,
            input,
            arch: ArchConfig::default_for(kind),
        }
    }

    /// The model family.
    pub fn kind(&self) -> ModelKind {
        self.arch.kind()
    }

    /// An ensemble's members, trees first, each a binary model of the same input.
    pub fn ensemble_members(&self) -> Option<[ModelConfig; 2]> {
        let ArchConfig::Ensemble(c) = &self.arch else {
            return None;
        };
        let member = |arch: ArchConfig| ModelConfig {
            arch,
            head: Head::Sigmoid,
            ..self.clone()
        };
        Some([
            member(ArchConfig::Gbdt(c.trees.clone())),
            member((*c.network).clone()),
        ])
    }

    /// Parses a TOML config (fields left out take the published defaults).
    pub fn from_toml_str(text: &str) -> Result<Self, ModelError> {
        toml::from_str(text).map_err(|e| ModelError::ConfigSyntax(e.to_string()))
    }

    /// The config as TOML.
    pub fn to_toml_string(&self) -> Result<String, ModelError> {
        toml::to_string(self).map_err(|e| ModelError::ConfigSyntax(e.to_string()))
    }

    /// Number of outputs of the last layer.
    pub fn n_outputs(&self) -> usize {
        match self.head {
            Head::Sigmoid => 1,
            Head::Softmax => self.n_classes,
            Head::Reconstruction => self.input.sample_len(),
            Head::Hypersphere => 1,
        }
    }

    /// Validates every field and the shape arithmetic; the result is what networks are built from.
    pub fn check(&self) -> Result<CheckedConfig, ModelError> {
        let kind = self.kind();
        let invalid = |field: &'static str, reason: String| ModelError::InvalidConfig {
            kind,
            field,
            reason,
        };
        let unsupported = |reason: &'static str| ModelError::UnsupportedInput {
            kind,
            shape: self.input,
            reason,
        };
        let positive = |field: &'static str, value: usize| {
            if value == 0 {
                Err(invalid(field, "must be at least 1".into()))
            } else {
                Ok(())
            }
        };
        let probability = |field: &'static str, value: f64| {
            if value.is_finite() && (0.0..1.0).contains(&value) {
                Ok(())
            } else {
                Err(invalid(field, format!("{value} is not in [0, 1)")))
            }
        };
        let epsilon = |field: &'static str, value: f64| {
            if value.is_finite() && value > 0.0 {
                Ok(())
            } else {
                Err(invalid(field, format!("{value} is not a positive number")))
            }
        };

        let (channels, length) = self.input.channels_length();
        if channels == 0 || length == 0 {
            return Err(unsupported("the sample has zero size"));
        }
        match (kind.is_classifier(), self.head) {
            (true, Head::Reconstruction) => {
                return Err(invalid(
                    "head",
                    "a classifier needs a sigmoid or softmax head".into(),
                ))
            }
            (false, Head::Sigmoid | Head::Softmax | Head::Hypersphere) => {
                return Err(invalid(
                    "head",
                    "the autoencoder's head is `reconstruction`".into(),
                ))
            }
            (true, Head::Hypersphere) if kind != ModelKind::Ldpi => {
                return Err(invalid(
                    "head",
                    "the hypersphere (Deep SAD) head needs an embedding: only ldpi has one".into(),
                ))
            }
            _ => {}
        }
        if kind.is_classifier() && self.head != Head::Hypersphere {
            if self.n_classes < 2 {
                return Err(invalid(
                    "n_classes",
                    format!("{} classes; a classifier needs at least 2", self.n_classes),
                ));
            }
            if self.head == Head::Sigmoid && self.n_classes != 2 {
                return Err(invalid(
                    "head",
                    format!(
                        "a sigmoid head is binary but n_classes is {}; use `softmax`",
                        self.n_classes
                    ),
                ));
            }
        }

        match &self.arch {
            ArchConfig::Llaformer(c) => {
                if !matches!(self.input, InputShape::Tabular { .. }) {
                    return Err(unsupported(
                        "it reads one flow's feature vector as a length-F sequence (tabular input)",
                    ));
                }
                positive("conv_filters", c.conv_filters)?;
                positive("kernel_size", c.kernel_size)?;
                positive("lstm_units", c.lstm_units)?;
                positive("tcn_dilation", c.tcn_dilation)?;
                epsilon("layer_norm_eps", c.layer_norm_eps)?;
                probability("dropout", c.dropout)?;
            }
            ArchConfig::Lln(c) => {
                if !matches!(self.input, InputShape::Windows { .. }) {
                    return Err(unsupported("it reads windows of packets (N, C, L)"));
                }
                positive("conv1_filters", c.conv1_filters)?;
                positive("conv2_filters", c.conv2_filters)?;
                positive("kernel_size", c.kernel_size)?;
                positive("pool", c.pool)?;
                positive("lstm_units", c.lstm_units)?;
                positive("heads", c.heads)?;
                positive("key_dim", c.key_dim)?;
                positive("dense_units", c.dense_units)?;
                probability("dropout", c.dropout)?;
                epsilon("batch_norm_eps", c.batch_norm_eps)?;
                epsilon("layer_norm_eps", c.layer_norm_eps)?;
                let steps = length / c.pool / c.pool;
                if steps == 0 {
                    return Err(invalid(
                        "pool",
                        format!(
                            "a window of {length} steps is shorter than two poolings by {} need (at least {})",
                            c.pool,
                            c.pool * c.pool
                        ),
                    ));
                }
            }
            ArchConfig::Hybrid(c) => {
                if matches!(self.input, InputShape::Bytes { .. }) {
                    return Err(unsupported(
                        "it reads flow features (tabular) or windows of k flows",
                    ));
                }
                positive("lstm_units", c.lstm_units)?;
                positive("heads", c.heads)?;
                positive("key_dim", c.key_dim)?;
                positive("ffn_units", c.ffn_units)?;
                probability("attention_dropout", c.attention_dropout)?;
                epsilon("layer_norm_eps", c.layer_norm_eps)?;
            }
            ArchConfig::CnnLstm(c) => {
                if !matches!(self.input, InputShape::Windows { .. }) {
                    return Err(unsupported("it reads (N, C, L) windows"));
                }
                positive("conv1_channels", c.conv1_channels)?;
                positive("conv2_channels", c.conv2_channels)?;
                positive("kernel_size", c.kernel_size)?;
                positive("pool", c.pool)?;
                positive("lstm_hidden", c.lstm_hidden)?;
                positive("lstm_layers", c.lstm_layers)?;
                probability("dropout", c.dropout)?;
                if cnn_lstm_steps(c, length).is_none() {
                    return Err(invalid(
                        "kernel_size",
                        format!(
                            "a window of {length} steps is shorter than two convolutions (kernel {}, padding {}) each followed by pooling by {} need",
                            c.kernel_size, c.padding, c.pool
                        ),
                    ));
                }
            }
            ArchConfig::Ldpi(c) => {
                // A feature row reads as a 1-channel sequence, as the Deep SAD on
                // CIC-like tabular input asks.
                if matches!(self.input, InputShape::Windows { .. }) {
                    return Err(unsupported(
                        "it reads the first bytes of a flow, or one feature row, as (N, 1, L)",
                    ));
                }
                for (i, &width) in c.block_channels.iter().enumerate() {
                    if width == 0 {
                        return Err(invalid(
                            "block_channels",
                            format!("block {} has 0 channels", i + 1),
                        ));
                    }
                }
                for &k in &c.block1_kernels {
                    if k % 2 == 0 {
                        return Err(invalid(
                            "block1_kernels",
                            format!("kernel {k} is even; length-preserving padding k/2 needs odd kernels"),
                        ));
                    }
                }
                positive("embedding_dim", c.embedding_dim)?;
                if !(c.leaky_relu_slope.is_finite() && c.elu_alpha.is_finite()) {
                    return Err(invalid(
                        "leaky_relu_slope",
                        "activation parameters must be finite".into(),
                    ));
                }
            }
            ArchConfig::Autoencoder(c) => {
                let InputShape::Tabular { features } = self.input else {
                    return Err(unsupported("it reads feature vectors (tabular input)"));
                };
                positive("code_dim", c.code_dim)?;
                if c.code_dim > features {
                    return Err(invalid(
                        "code_dim",
                        format!(
                            "a code of {} dims is wider than the {features} input features",
                            c.code_dim
                        ),
                    ));
                }
                if c.hidden.contains(&0) {
                    return Err(invalid("hidden", "a hidden layer has width 0".into()));
                }
            }
            ArchConfig::Tabm(c) => {
                if !matches!(self.input, InputShape::Tabular { .. }) {
                    return Err(unsupported("it reads feature vectors (tabular input)"));
                }
                if !matches!(self.head, Head::Sigmoid | Head::Softmax) {
                    return Err(invalid(
                        "head",
                        "TabM classifies: a sigmoid or softmax head".into(),
                    ));
                }
                positive("members", c.members)?;
                positive("width", c.width)?;
                probability("dropout", c.dropout)?;
                if c.embedding == TabmEmbedding::Periodic {
                    positive("periodic.frequencies", c.periodic.frequencies)?;
                    positive("periodic.dim", c.periodic.dim)?;
                    epsilon("periodic.scale", c.periodic.scale)?;
                }
            }
            ArchConfig::Ensemble(c) => {
                let network = c.network.kind();
                if !network.is_network() || !network.is_classifier() {
                    return Err(invalid(
                        "network",
                        format!("the network member must be a neural classifier, not {network}"),
                    ));
                }
                if self.head != Head::Sigmoid {
                    return Err(invalid(
                        "head",
                        "an ensemble is binary (benign vs attack): train it with two classes (`--label-mode binary`)"
                            .into(),
                    ));
                }
                for member in self.ensemble_members().into_iter().flatten() {
                    member.check()?;
                }
            }
            ArchConfig::Gbdt(c) => {
                if !matches!(self.input, InputShape::Tabular { .. }) {
                    return Err(unsupported(
                        "trees split single feature values (tabular input)",
                    ));
                }
                if self.head != Head::Sigmoid {
                    return Err(invalid(
                        "head",
                        "gbdt is binary (benign vs attack): train it with two classes (`--label-mode binary`)"
                        .into(),
                    ));
                }
                positive("iterations", c.iterations)?;
                positive("max_depth", c.max_depth)?;
                if c.max_depth > crate::gbdt::MAX_TREE_DEPTH {
                    return Err(invalid(
                        "max_depth",
                        format!("at most {}", crate::gbdt::MAX_TREE_DEPTH),
                    ));
                }
                if c.max_leaves < 2 {
                    return Err(invalid("max_leaves", "must be at least 2".into()));
                }
                if c.bins < 2 {
                    return Err(invalid("bins", "must be at least 2".into()));
                }
                epsilon("learning_rate", f64::from(c.learning_rate))?;
                for (field, value) in [("l2", c.l2), ("min_leaf_weight", c.min_leaf_weight)] {
                    if !(value.is_finite() && value >= 0.0) {
                        return Err(invalid(field, format!("{value} is not a number >= 0")));
                    }
                }
            }
        }
        Ok(CheckedConfig(self.clone()))
    }
}

/// Time steps the CNN-LSTM's LSTM sees for a window of `length`, or `None` if the window is too short.
pub(crate) fn cnn_lstm_steps(c: &CnnLstmConfig, length: usize) -> Option<usize> {
    let mut steps = length;
    for _ in 0..2 {
        let padded = steps + 2 * c.padding;
        if padded < c.kernel_size {
            return None;
        }
        steps = (padded - c.kernel_size + 1) / c.pool;
        if steps == 0 {
            return None;
        }
    }
    Some(steps)
}

/// A [`ModelConfig`] that passed [`ModelConfig::check`].
#[derive(Debug, Clone, PartialEq)]
pub struct CheckedConfig(ModelConfig);

impl Deref for CheckedConfig {
    type Target = ModelConfig;

    fn deref(&self) -> &ModelConfig {
        &self.0
    }
}

impl CheckedConfig {
    /// The validated config.
    pub fn into_inner(self) -> ModelConfig {
        self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_check_for_their_natural_inputs() {
        let tabular = InputShape::Tabular { features: 89 };
        let windows = InputShape::Windows {
            channels: 8,
            length: 100,
        };
        let bytes = InputShape::Bytes { length: 240 };
        // (family, the input its design reads, an input it cannot read)
        let cases = [
            (ModelKind::Llaformer, tabular, windows),
            (ModelKind::Lln, windows, tabular),
            (
                ModelKind::Hybrid,
                InputShape::Tabular { features: 10 },
                bytes,
            ),
            (
                ModelKind::CnnLstm,
                InputShape::Windows {
                    channels: 6,
                    length: 128,
                },
                bytes,
            ),
            (ModelKind::Ldpi, bytes, windows),
            (
                ModelKind::Autoencoder,
                InputShape::Tabular { features: 40 },
                InputShape::Tabular { features: 0 },
            ),
        ];
        for (kind, natural, foreign) in cases {
            let checked = ModelConfig::default_for(kind, natural, 2)
                .check()
                .unwrap_or_else(|e| panic!("{kind}: {e}"));
            assert_eq!(checked.input, natural, "{kind}");
            let err = ModelConfig::default_for(kind, foreign, 2).check();
            assert!(
                matches!(err, Err(ModelError::UnsupportedInput { .. })),
                "{kind} on {foreign}: {err:?}"
            );
        }
        // A window too short for LLN's two poolings names the field.
        let short = InputShape::Windows {
            channels: 8,
            length: 3,
        };
        let err = ModelConfig::default_for(ModelKind::Lln, short, 2).check();
        assert!(
            matches!(err, Err(ModelError::InvalidConfig { field: "pool", .. })),
            "{err:?}"
        );
    }

    #[test]
    fn toml_round_trip_and_partial_tables_take_defaults() {
        let cfg = ModelConfig::default_for(
            ModelKind::CnnLstm,
            InputShape::Windows {
                channels: 6,
                length: 128,
            },
            2,
        );
        let text = cfg.to_toml_string().unwrap();
        assert_eq!(ModelConfig::from_toml_str(&text).unwrap(), cfg);

        let partial = "n_classes = 2\nhead = \"softmax\"\n[input]\nlayout = \"windows\"\nchannels = 6\nlength = 128\n[arch]\nkind = \"cnn-lstm\"\nlstm_hidden = 64\n";
        let parsed = ModelConfig::from_toml_str(partial).unwrap();
        let ArchConfig::CnnLstm(c) = &parsed.arch else {
            panic!("wrong kind {:?}", parsed.arch)
        };
        assert_eq!(c.lstm_hidden, 64);
        assert_eq!(c.conv2_channels, 256);

        let typo = partial.replace("lstm_hidden", "lstm_hiden");
        let err = ModelConfig::from_toml_str(&typo).unwrap_err();
        assert!(err.to_string().contains("lstm_hiden"), "{err}");
    }

    #[test]
    fn impossible_shapes_are_refused_before_training() {
        let short = ModelConfig::default_for(
            ModelKind::CnnLstm,
            InputShape::Windows {
                channels: 6,
                length: 3,
            },
            2,
        );
        let err = short.check().unwrap_err();
        assert!(
            matches!(
                err,
                ModelError::InvalidConfig {
                    field: "kernel_size",
                    ..
                }
            ),
            "{err}"
        );
        assert!(err.to_string().contains("shorter"), "{err}");

        let lln = ModelConfig::default_for(
            ModelKind::Lln,
            InputShape::Windows {
                channels: 8,
                length: 3,
            },
            2,
        );
        assert!(matches!(
            lln.check(),
            Err(ModelError::InvalidConfig { field: "pool", .. })
        ));

        let wrong_layout = ModelConfig::default_for(
            ModelKind::Ldpi,
            InputShape::Windows {
                channels: 3,
                length: 10,
            },
            2,
        );
        assert!(matches!(
            wrong_layout.check(),
            Err(ModelError::UnsupportedInput { .. })
        ));
        // A feature row reads as one channel (Deep SAD on tabular flows).
        ModelConfig::default_for(ModelKind::Ldpi, InputShape::Tabular { features: 10 }, 2)
            .check()
            .unwrap();

        let zero_classes =
            ModelConfig::default_for(ModelKind::Hybrid, InputShape::Tabular { features: 10 }, 0);
        assert!(matches!(
            zero_classes.check(),
            Err(ModelError::InvalidConfig {
                field: "n_classes",
                ..
            })
        ));

        let mut sigmoid_three =
            ModelConfig::default_for(ModelKind::Hybrid, InputShape::Tabular { features: 10 }, 3);
        assert_eq!(sigmoid_three.head, Head::Softmax);
        sigmoid_three.head = Head::Sigmoid;
        assert!(matches!(
            sigmoid_three.check(),
            Err(ModelError::InvalidConfig { field: "head", .. })
        ));

        let mut dropout = ModelConfig::default_for(
            ModelKind::Llaformer,
            InputShape::Tabular { features: 10 },
            2,
        );
        if let ArchConfig::Llaformer(c) = &mut dropout.arch {
            c.dropout = 1.5;
        }
        assert!(matches!(
            dropout.check(),
            Err(ModelError::InvalidConfig {
                field: "dropout",
                ..
            })
        ));

        let wide_code = ModelConfig::default_for(
            ModelKind::Autoencoder,
            InputShape::Tabular { features: 4 },
            2,
        );
        assert!(matches!(
            wide_code.check(),
            Err(ModelError::InvalidConfig {
                field: "code_dim",
                ..
            })
        ));
    }
}
