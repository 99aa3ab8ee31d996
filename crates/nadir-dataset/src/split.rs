//! Train/validation/test splits and cross-validation folds, as row indices.

use rand::seq::SliceRandom;
use rand::{RngCore, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use crate::error::DatasetError;
use crate::load::Dataset;

/// Row indices of each part, each sorted ascending (file order kept inside a part).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Splits {
    pub train: Vec<usize>,
    pub val: Vec<usize>,
    pub test: Vec<usize>,
}

/// How to split. Fractions must be >= 0 and sum to 1; `train` > 0.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum SplitSpec {
    /// Random, seeded, each class split in the same proportions.
    Stratified {
        train: f64,
        val: f64,
        test: f64,
        seed: u64,
    },
    /// Earliest rows train, then val, then test (by `Dataset::time`, else file order);
    /// `gap` rows are dropped at each boundary so stride-1 windows cannot straddle it.
    TimeOrdered {
        train: f64,
        val: f64,
        test: f64,
        gap: usize,
    },
    /// Whole groups (capture file, scenario) go to one part: no group on two sides. Groups are
    /// shuffled (seeded) and taken until each part has its share of rows.
    Group {
        train: f64,
        val: f64,
        test: f64,
        seed: u64,
    },
}

impl Default for SplitSpec {
    fn default() -> SplitSpec {
        SplitSpec::Stratified {
            train: 0.70,
            val: 0.15,
            test: 0.15,
            seed: 42,
        }
    }
}

impl std::fmt::Display for SplitSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let (train, val, test) = self.fractions();
        let shares = format!(
            "train/val/test {:.0}/{:.0}/{:.0} %",
            train * 100.0,
            val * 100.0,
            test * 100.0
        );
        match self {
            SplitSpec::Stratified { seed, .. } => write!(f, "stratified, {shares}, seed {seed}"),
            SplitSpec::TimeOrdered { gap, .. } => {
                write!(
                    f,
                    "time-ordered, {shares}, {gap} rows dropped at each boundary"
                )
            }
            SplitSpec::Group { seed, .. } => {
                write!(f, "whole groups, {shares}, seed {seed}")
            }
        }
    }
}

impl SplitSpec {
    fn fractions(&self) -> (f64, f64, f64) {
        match *self {
            SplitSpec::Stratified {
                train, val, test, ..
            }
            | SplitSpec::TimeOrdered {
                train, val, test, ..
            }
            | SplitSpec::Group {
                train, val, test, ..
            } => (train, val, test),
        }
    }

    pub fn validate(&self) -> Result<(), DatasetError> {
        let (train, val, test) = self.fractions();
        let all_finite = [train, val, test]
            .iter()
            .all(|f| f.is_finite() && *f >= 0.0);
        if !all_finite || train <= 0.0 || ((train + val + test) - 1.0).abs() > 1e-6 {
            return Err(DatasetError::InvalidSpec(format!(
                "split fractions train {train}, val {val}, test {test} must be >= 0, train > 0, \
                 and sum to 1"
            )));
        }
        Ok(())
    }

    /// Splits rows described by their labels, groups and (optional) times.
    pub fn apply(
        &self,
        y: &[u32],
        groups: &[u32],
        time: Option<&[f64]>,
    ) -> Result<Splits, DatasetError> {
        self.validate()?;
        let n = y.len();
        if n == 0 {
            return Err(DatasetError::InvalidSpec("cannot split 0 rows".into()));
        }
        let (ftrain, fval, _) = self.fractions();
        let mut splits = match *self {
            SplitSpec::Stratified { seed, .. } => stratified(y, ftrain, fval, seed),
            SplitSpec::TimeOrdered { gap, .. } => time_ordered(n, time, ftrain, fval, gap)?,
            SplitSpec::Group { seed, .. } => {
                if groups.len() != n {
                    return Err(DatasetError::Shape(format!(
                        "{} group ids for {n} rows",
                        groups.len()
                    )));
                }
                group_split(groups, ftrain, fval, seed, self.fractions())?
            }
        };
        splits.train.sort_unstable();
        splits.val.sort_unstable();
        splits.test.sort_unstable();
        Ok(splits)
    }
}

impl SplitSpec {
    /// Splits for learning from normal traffic only: the rows of `normal_class` are split as
    /// [`SplitSpec::apply`] does (by time, at random, or by group), and every other row goes to
    /// the test split, so no attack is seen in training or when the threshold is chosen.
    pub fn apply_normal_only(
        &self,
        y: &[u32],
        groups: &[u32],
        time: Option<&[f64]>,
        normal_class: u32,
    ) -> Result<Splits, DatasetError> {
        let normal: Vec<usize> = (0..y.len()).filter(|&i| y[i] == normal_class).collect();
        if normal.is_empty() {
            return Err(DatasetError::InvalidSpec(
                "no normal (benign) rows to learn from".into(),
            ));
        }
        let pick = |values: &[u32]| -> Vec<u32> {
            normal
                .iter()
                .map(|&i| values.get(i).copied().unwrap_or(UNGROUPED))
                .collect()
        };
        let time: Option<Vec<f64>> = time.map(|t| normal.iter().map(|&i| t[i]).collect());
        let inner = self.apply(&pick(y), &pick(groups), time.as_deref())?;
        let back =
            |part: Vec<usize>| -> Vec<usize> { part.into_iter().map(|i| normal[i]).collect() };
        let mut test = back(inner.test);
        test.extend((0..y.len()).filter(|&i| y[i] != normal_class));
        test.sort_unstable();
        Ok(Splits {
            train: back(inner.train),
            val: back(inner.val),
            test,
        })
    }
}

/// Splits a loaded dataset. A group split whose training side misses a class of the data
/// is an error naming the groups on each side (a model cannot learn a class it never sees).
pub fn split(dataset: &Dataset, spec: &SplitSpec) -> Result<Splits, DatasetError> {
    let splits = spec.apply(&dataset.y, &dataset.groups, dataset.time.as_deref())?;
    if matches!(spec, SplitSpec::Group { .. }) {
        check_group_sides(dataset, &splits)?;
    }
    Ok(splits)
}

fn check_group_sides(dataset: &Dataset, splits: &Splits) -> Result<(), DatasetError> {
    // Held-out scenarios are unseen classes by design; what training cannot do without is
    // benign rows, or attack rows.
    let benign = dataset.labels.benign_class;
    let has =
        |rows: &[usize], attack: bool| rows.iter().any(|&i| (dataset.y[i] != benign) == attack);
    let all: Vec<usize> = (0..dataset.rows()).collect();
    let missing = match (has(&splits.train, false), has(&splits.train, true)) {
        (false, _) if has(&all, false) => "benign row",
        (_, false) if has(&all, true) => "attack row",
        _ => return Ok(()),
    };
    let group_names = |rows: &[usize]| -> String {
        let ids: std::collections::BTreeSet<u32> = rows
            .iter()
            .map(|&i| dataset.groups[i])
            .filter(|&g| g != UNGROUPED)
            .collect();
        let names: Vec<&str> = ids
            .iter()
            .map(|&g| {
                dataset
                    .group_names
                    .get(g as usize)
                    .map_or("?", String::as_str)
            })
            .collect();
        if names.is_empty() {
            "none".into()
        } else {
            names.join(", ")
        }
    };
    Err(DatasetError::InvalidSpec(format!(
        "the group split leaves no {missing} in the training split (train groups: {}; \
         validation: {}; test: {}); give more groups of that kind, another --seed, or split \
         by time",
        group_names(&splits.train),
        group_names(&splits.val),
        group_names(&splits.test),
    )))
}

/// Splits a loaded dataset for learning from normal traffic only
/// ([`SplitSpec::apply_normal_only`]).
pub fn split_normal_only(
    dataset: &Dataset,
    spec: &SplitSpec,
    normal_class: u32,
) -> Result<Splits, DatasetError> {
    spec.apply_normal_only(
        &dataset.y,
        &dataset.groups,
        dataset.time.as_deref(),
        normal_class,
    )
}

fn indices_by_class(y: &[u32]) -> Vec<Vec<usize>> {
    let n_classes = y.iter().max().map_or(0, |m| *m as usize + 1);
    let mut by_class = vec![Vec::new(); n_classes];
    for (i, &c) in y.iter().enumerate() {
        by_class[c as usize].push(i);
    }
    by_class
}

fn stratified(y: &[u32], ftrain: f64, fval: f64, seed: u64) -> Splits {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut splits = Splits::default();
    for mut idx in indices_by_class(y) {
        idx.shuffle(&mut rng);
        let n = idx.len();
        // A class with any rows keeps at least one training row.
        let n_train = ((n as f64 * ftrain).round() as usize).clamp(n.min(1), n);
        let n_val = ((n as f64 * fval).round() as usize).min(n - n_train);
        splits.train.extend_from_slice(&idx[..n_train]);
        splits.val.extend_from_slice(&idx[n_train..n_train + n_val]);
        splits.test.extend_from_slice(&idx[n_train + n_val..]);
    }
    splits
}

fn time_ordered(
    n: usize,
    time: Option<&[f64]>,
    ftrain: f64,
    fval: f64,
    gap: usize,
) -> Result<Splits, DatasetError> {
    let mut order: Vec<usize> = (0..n).collect();
    if let Some(t) = time {
        if t.len() != n {
            return Err(DatasetError::Shape(format!(
                "{} timestamps for {n} rows",
                t.len()
            )));
        }
        // Stable sort; rows without a time (NaN) go last.
        order.sort_by(|&a, &b| match (t[a].is_nan(), t[b].is_nan()) {
            (false, false) => t[a].total_cmp(&t[b]),
            (a_nan, b_nan) => a_nan.cmp(&b_nan),
        });
    }
    let n_train = ((n as f64 * ftrain).round() as usize).clamp(1, n);
    let n_val = ((n as f64 * fval).round() as usize).min(n - n_train);
    let val_start = (n_train + gap).min(n);
    let val_end = (n_train + n_val).max(val_start).min(n);
    let test_start = (val_end + gap).min(n);
    Ok(Splits {
        train: order[..n_train].to_vec(),
        val: order[val_start..val_end].to_vec(),
        test: order[test_start..].to_vec(),
    })
}

/// Group id of rows that belong to no group (benign traffic when grouping by scenario): they
/// are shared out among the parts like a random split, so every part has some.
pub const UNGROUPED: u32 = u32::MAX;

fn group_split(
    groups: &[u32],
    ftrain: f64,
    fval: f64,
    seed: u64,
    fractions: (f64, f64, f64),
) -> Result<Splits, DatasetError> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let n_groups = groups
        .iter()
        .filter(|&&g| g != UNGROUPED)
        .max()
        .map_or(0, |m| *m as usize + 1);
    let mut members = vec![Vec::new(); n_groups];
    let mut free = Vec::new();
    for (i, &g) in groups.iter().enumerate() {
        match g {
            UNGROUPED => free.push(i),
            g => members[g as usize].push(i),
        }
    }
    let mut ids: Vec<usize> = (0..n_groups).filter(|&g| !members[g].is_empty()).collect();
    let parts_wanted = [fractions.0, fractions.1, fractions.2]
        .iter()
        .filter(|f| **f > 0.0)
        .count();
    if ids.len() < parts_wanted {
        return Err(DatasetError::InvalidSpec(format!(
            "group split needs at least {parts_wanted} groups, the data has {}",
            ids.len()
        )));
    }
    ids.shuffle(&mut rng);
    let n = groups.len() - free.len();
    let train_target = n as f64 * ftrain;
    let val_target = n as f64 * fval;
    let mut splits = stratified(&vec![0; free.len()], ftrain, fval, rng.next_u64());
    for part in [&mut splits.train, &mut splits.val, &mut splits.test] {
        part.iter_mut().for_each(|i| *i = free[*i]);
    }
    let taken = |part: &Vec<usize>, from: usize| part.len() - from;
    let (free_train, free_val) = (splits.train.len(), splits.val.len());
    // Leave enough groups for the later non-empty parts.
    let reserve_after_train = usize::from(fractions.1 > 0.0) + usize::from(fractions.2 > 0.0);
    let reserve_after_val = usize::from(fractions.2 > 0.0);
    let mut k = 0;
    while k < ids.len()
        && (taken(&splits.train, free_train) == 0
            || (taken(&splits.train, free_train) as f64) < train_target)
        && ids.len() - k > reserve_after_train
    {
        splits.train.extend_from_slice(&members[ids[k]]);
        k += 1;
    }
    if fractions.1 > 0.0 {
        while k < ids.len()
            && (taken(&splits.val, free_val) == 0
                || (taken(&splits.val, free_val) as f64) < val_target)
            && ids.len() - k > reserve_after_val
        {
            splits.val.extend_from_slice(&members[ids[k]]);
            k += 1;
        }
    }
    for &g in &ids[k..] {
        splits.test.extend_from_slice(&members[g]);
    }
    Ok(splits)
}

/// One cross-validation fold: train on `train`, evaluate on `test`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Fold {
    pub train: Vec<usize>,
    pub test: Vec<usize>,
}

/// `k` folds. With `groups`, whole groups are assigned to folds (largest first, each to the
/// fold with fewest rows) so no group is on both sides; without, folds are stratified by class
/// (seeded shuffle, round robin per class).
pub fn cross_validation_folds(
    y: &[u32],
    groups: Option<&[u32]>,
    k: usize,
    seed: u64,
) -> Result<Vec<Fold>, DatasetError> {
    if k < 2 {
        return Err(DatasetError::InvalidSpec(format!(
            "cross-validation needs k >= 2, got {k}"
        )));
    }
    let n = y.len();
    let mut fold_of = vec![0usize; n];
    match groups {
        Some(groups) => {
            if groups.len() != n {
                return Err(DatasetError::Shape(format!(
                    "{} group ids for {n} rows",
                    groups.len()
                )));
            }
            let n_groups = groups
                .iter()
                .filter(|&&g| g != UNGROUPED)
                .max()
                .map_or(0, |m| *m as usize + 1);
            let mut size = vec![0usize; n_groups];
            for &g in groups.iter().filter(|&&g| g != UNGROUPED) {
                size[g as usize] += 1;
            }
            let mut ids: Vec<usize> = (0..n_groups).filter(|&g| size[g] > 0).collect();
            if ids.len() < k {
                return Err(DatasetError::InvalidSpec(format!(
                    "group k-fold with k = {k} needs at least {k} groups, the data has {}",
                    ids.len()
                )));
            }
            let mut rng = ChaCha8Rng::seed_from_u64(seed);
            ids.shuffle(&mut rng);
            ids.sort_by(|a, b| size[*b].cmp(&size[*a]));
            let mut fold_rows = vec![0usize; k];
            let mut group_fold = vec![0usize; n_groups];
            for g in ids {
                let f = (0..k).min_by_key(|&f| fold_rows[f]).unwrap_or(0);
                group_fold[g] = f;
                fold_rows[f] += size[g];
            }
            // Ungrouped rows are dealt round robin after a shuffle.
            let mut free: Vec<usize> = (0..n).filter(|&i| groups[i] == UNGROUPED).collect();
            free.shuffle(&mut rng);
            for (j, &i) in free.iter().enumerate() {
                fold_of[i] = j % k;
            }
            for (i, &g) in groups.iter().enumerate().filter(|(_, &g)| g != UNGROUPED) {
                fold_of[i] = group_fold[g as usize];
            }
        }
        None => {
            let mut rng = ChaCha8Rng::seed_from_u64(seed);
            let mut next = 0usize;
            for mut idx in indices_by_class(y) {
                idx.shuffle(&mut rng);
                for i in idx {
                    fold_of[i] = next % k;
                    next += 1;
                }
            }
        }
    }
    Ok((0..k)
        .map(|f| Fold {
            train: (0..n).filter(|&i| fold_of[i] != f).collect(),
            test: (0..n).filter(|&i| fold_of[i] == f).collect(),
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels(n0: usize, n1: usize) -> Vec<u32> {
        let mut y = vec![0; n0];
        y.extend(std::iter::repeat_n(1, n1));
        y
    }

    #[test]
    fn normal_only_splits_benign_rows_by_time_and_tests_on_every_attack() {
        // 100 benign rows at t = 0..100 with attacks interleaved at every 5th second.
        let mut y = Vec::new();
        let mut time = Vec::new();
        for t in 0..100 {
            y.push(0);
            time.push(t as f64);
            if t % 5 == 0 {
                y.push(1);
                time.push(t as f64 + 0.5);
            }
        }
        let spec = SplitSpec::TimeOrdered {
            train: 0.7,
            val: 0.15,
            test: 0.15,
            gap: 0,
        };
        let s = spec
            .apply_normal_only(&y, &vec![0; y.len()], Some(&time), 0)
            .unwrap();
        // Fractions are of the benign rows, earliest first; no attack outside the test split.
        assert_eq!((s.train.len(), s.val.len()), (70, 15));
        assert!(s.train.iter().chain(&s.val).all(|&i| y[i] == 0));
        assert!(s.train.iter().all(|&i| time[i] < 70.0));
        assert!(s.val.iter().all(|&i| (70.0..85.0).contains(&time[i])));
        assert_eq!(s.test.iter().filter(|&&i| y[i] == 1).count(), 20);
        assert_eq!(s.test.len(), 15 + 20);

        let err = spec
            .apply_normal_only(&[1, 1], &[0, 0], None, 0)
            .unwrap_err();
        assert!(err.to_string().contains("no normal"), "{err}");
    }

    #[test]
    fn stratified_default_is_70_15_15_per_class_and_disjoint() {
        let y = labels(1000, 200);
        let s = SplitSpec::default()
            .apply(&y, &vec![0; 1200], None)
            .unwrap();
        assert_eq!((s.train.len(), s.val.len(), s.test.len()), (840, 180, 180));
        let attacks_in_train = s.train.iter().filter(|&&i| y[i] == 1).count();
        assert_eq!(attacks_in_train, 140);
        let mut all: Vec<usize> = s
            .train
            .iter()
            .chain(&s.val)
            .chain(&s.test)
            .copied()
            .collect();
        all.sort_unstable();
        assert_eq!(all, (0..1200).collect::<Vec<_>>());
    }

    #[test]
    fn same_seed_same_split_other_seed_other_split() {
        let y = labels(100, 100);
        let g = vec![0; 200];
        let a = SplitSpec::default().apply(&y, &g, None).unwrap();
        let b = SplitSpec::default().apply(&y, &g, None).unwrap();
        let spec = SplitSpec::Stratified {
            train: 0.7,
            val: 0.15,
            test: 0.15,
            seed: 7,
        };
        let c = spec.apply(&y, &g, None).unwrap();
        assert_eq!(a, b);
        assert_ne!(a.train, c.train);
    }

    #[test]
    fn time_ordered_puts_earliest_rows_in_train_and_leaves_gaps() {
        let time: Vec<f64> = (0..100).rev().map(f64::from).collect();
        let spec = SplitSpec::TimeOrdered {
            train: 0.6,
            val: 0.2,
            test: 0.2,
            gap: 5,
        };
        let s = spec.apply(&[0; 100], &[0; 100], Some(&time)).unwrap();
        let latest_train = s.train.iter().map(|&i| time[i]).fold(f64::MIN, f64::max);
        let earliest_val = s.val.iter().map(|&i| time[i]).fold(f64::MAX, f64::min);
        let earliest_test = s.test.iter().map(|&i| time[i]).fold(f64::MAX, f64::min);
        assert_eq!(latest_train, 59.0);
        assert_eq!(earliest_val, 65.0);
        assert_eq!(earliest_test, 85.0);
    }

    #[test]
    fn group_split_never_puts_a_group_on_two_sides() {
        let groups: Vec<u32> = (0..1000).map(|i| (i % 10) as u32).collect();
        let spec = SplitSpec::Group {
            train: 0.6,
            val: 0.2,
            test: 0.2,
            seed: 3,
        };
        let s = spec.apply(&[0; 1000], &groups, None).unwrap();
        let set = |idx: &[usize]| {
            idx.iter()
                .map(|&i| groups[i])
                .collect::<std::collections::BTreeSet<_>>()
        };
        let (tr, va, te) = (set(&s.train), set(&s.val), set(&s.test));
        assert!(tr.is_disjoint(&va) && tr.is_disjoint(&te) && va.is_disjoint(&te));
        assert!(!va.is_empty() && !te.is_empty());
        assert_eq!(s.train.len() + s.val.len() + s.test.len(), 1000);

        // Ungrouped rows (benign traffic beside attack scenarios) go to every part by share.
        let mut groups = groups.clone();
        groups[..500].fill(UNGROUPED);
        let s = spec.apply(&[0; 1000], &groups, None).unwrap();
        let free = |idx: &[usize]| idx.iter().filter(|&&i| groups[i] == UNGROUPED).count();
        assert_eq!(
            (free(&s.train), free(&s.val), free(&s.test)),
            (300, 100, 100)
        );
        let grouped = |idx: &[usize]| {
            idx.iter()
                .map(|&i| groups[i])
                .filter(|&g| g != UNGROUPED)
                .collect::<std::collections::BTreeSet<_>>()
        };
        let (tr, va, te) = (grouped(&s.train), grouped(&s.val), grouped(&s.test));
        assert!(
            tr.len() > 1 && va.len() > 1 && te.len() > 1,
            "{tr:?} {va:?} {te:?}"
        );
        assert!(tr.is_disjoint(&va) && tr.is_disjoint(&te) && va.is_disjoint(&te));
        assert_eq!(s.train.len() + s.val.len() + s.test.len(), 1000);
    }

    #[test]
    fn bad_fractions_are_refused() {
        let spec = SplitSpec::Stratified {
            train: 0.7,
            val: 0.2,
            test: 0.2,
            seed: 1,
        };
        assert!(matches!(
            spec.apply(&[0], &[0], None),
            Err(DatasetError::InvalidSpec(_))
        ));
    }

    #[test]
    fn folds_cover_each_row_once_and_group_folds_keep_groups_whole() {
        let y = labels(50, 50);
        let folds = cross_validation_folds(&y, None, 5, 1).unwrap();
        let mut seen = vec![0; 100];
        for f in &folds {
            assert_eq!(f.test.len(), 20);
            assert_eq!(f.test.iter().filter(|&&i| y[i] == 1).count(), 10);
            f.test.iter().for_each(|&i| seen[i] += 1);
        }
        assert!(seen.iter().all(|&c| c == 1));
        let groups: Vec<u32> = (0..100).map(|i| (i / 10) as u32).collect();
        for f in cross_validation_folds(&y, Some(&groups), 3, 1).unwrap() {
            for &i in &f.test {
                assert!(f.train.iter().all(|&j| groups[j] != groups[i]));
            }
        }
    }
}
