"""Scenario-disjoint folds of k8s-misuse-dev/dev.csv and the scikit-learn peers (bench/quality/k8s.sh).

    python3 k8s_folds.py split DEV.csv OUT            # OUT/fold-<label>/{train,test}.csv
    python3 k8s_folds.py sklearn FOLD COLUMNS.json    # FOLD/sklearn.json
    python3 k8s_folds.py table OUT MODELS...          # Markdown: every model x held-out scenario

Protocol: benign rows sorted by Timestamp, the earliest 70 % train and the latest 30 % test
(the same in every fold); one attack scenario (label) held out per fold as the test attacks,
the other four train. ROC-AUC and recall at 1 % FPR (threshold at the 99th percentile of the
test benign scores) with 95 % bootstrap intervals (stratified resampling of the test rows).
"""
import csv
import json
import os
import sys

BENIGN = "0"
TRAIN_BENIGN_SHARE = 0.7
RESAMPLES = 200


def split(dev, out):
    with open(dev, newline="") as f:
        reader = csv.reader(f)
        header = next(reader)
        rows = list(reader)
    label = header.index("Label")
    stamp = header.index("Timestamp")
    benign = sorted((r for r in rows if r[label] == BENIGN), key=lambda r: r[stamp])
    cut = int(len(benign) * TRAIN_BENIGN_SHARE)
    scenarios = sorted({r[label] for r in rows if r[label] != BENIGN}, key=int)
    for held in scenarios:
        fold = os.path.join(out, f"fold-{held}")
        os.makedirs(fold, exist_ok=True)
        train = benign[:cut] + [r for r in rows if r[label] not in (BENIGN, held)]
        test = benign[cut:] + [r for r in rows if r[label] == held]
        for name, part in (("train", train), ("test", test)):
            with open(os.path.join(fold, f"{name}.csv"), "w", newline="") as f:
                w = csv.writer(f)
                w.writerow(header)
                w.writerows(part)
        print(f"fold {held}: {len(train)} train rows, {len(test)} test rows", file=sys.stderr)
    print(" ".join(scenarios))


def metrics(y, s):
    import numpy as np
    from sklearn.metrics import roc_auc_score

    threshold = np.quantile(s[y == 0], 0.99)
    return roc_auc_score(y, s), float(np.mean(s[y == 1] > threshold))


def bootstrap(y, s, seed=0):
    import numpy as np

    rng = np.random.default_rng(seed)
    pos, neg = np.flatnonzero(y == 1), np.flatnonzero(y == 0)
    draws = []
    for _ in range(RESAMPLES):
        idx = np.concatenate([rng.choice(pos, len(pos)), rng.choice(neg, len(neg))])
        draws.append(metrics(y[idx], s[idx]))
    lo, hi = np.percentile(np.array(draws), [2.5, 97.5], axis=0)
    auc, recall = metrics(y, s)
    return {
        "roc_auc": auc, "roc_auc_ci": [lo[0], hi[0]],
        "recall_at_1pct_fpr": recall, "recall_ci": [lo[1], hi[1]],
    }


def sklearn_peers(fold, columns_json):
    import time

    import numpy as np
    from sklearn.ensemble import HistGradientBoostingClassifier, RandomForestClassifier

    columns = json.load(open(columns_json))

    def load(name):
        with open(os.path.join(fold, name), newline="") as f:
            reader = csv.reader(f)
            header = next(reader)
            idx = [header.index(c) for c in columns]
            label = header.index("Label")
            x, y = [], []
            for r in reader:
                x.append([float(r[i]) if r[i] not in ("", "NaN", "Infinity", "-Infinity") else np.nan for i in idx])
                y.append(0 if r[label] == BENIGN else 1)
        x = np.array(x, dtype=np.float64)
        x[~np.isfinite(x)] = np.nan
        return x, np.array(y)

    xtr, ytr = load("train.csv")
    xte, yte = load("test.csv")
    out = {}
    for name, model in (
        ("sklearn-hgb", HistGradientBoostingClassifier(random_state=0)),
        # Random forests take no NaN before scikit-learn 1.4's support; impute with 0 as a user would.
        ("sklearn-rf", RandomForestClassifier(random_state=0, n_jobs=2)),
    ):
        started = time.time()
        fit_x = xtr if name == "sklearn-hgb" else np.nan_to_num(xtr)
        test_x = xte if name == "sklearn-hgb" else np.nan_to_num(xte)
        model.fit(fit_x, ytr)
        scores = model.predict_proba(test_x)[:, 1]
        out[name] = bootstrap(yte, scores) | {"fit_seconds": time.time() - started}
    json.dump(out, open(os.path.join(fold, "sklearn.json"), "w"), indent=1)


def nadir_figures(evaluation_json):
    e = json.load(open(evaluation_json))
    d = e["detection"]
    ci = (d.get("intervals") or {}).get("roc_auc") or {}
    at1 = next((p for p in d.get("recall_at_fpr") or [] if abs(p["target_fpr"] - 0.01) < 1e-12), {})
    rci = at1.get("recall_ci") or {}
    return {
        "roc_auc": d["roc_auc"], "roc_auc_ci": [ci.get("lower"), ci.get("upper")],
        "recall_at_1pct_fpr": at1.get("recall"), "recall_ci": [rci.get("lower"), rci.get("upper")],
    }


def cell(f, key, ci_key):
    v = f.get(key)
    if v is None:
        return "n/a"
    lo, hi = f.get(ci_key) or [None, None]
    if lo is None:
        return f"{v:.3f}"
    return f"{v:.3f} [{lo:.2f}, {hi:.2f}]"


def table(out, models):
    folds = sorted((d for d in os.listdir(out) if d.startswith("fold-")),
                   key=lambda d: (not d[5:].isdigit(), int(d[5:]) if d[5:].isdigit() else d))
    figures = {}
    for fold in folds:
        path = os.path.join(out, fold)
        peers = json.load(open(os.path.join(path, "sklearn.json"))) if os.path.exists(os.path.join(path, "sklearn.json")) else {}
        for m in models:
            report = os.path.join(path, f"{m}.nadir.report", "evaluation.json")
            if m in peers:
                figures[(m, fold)] = peers[m]
            elif os.path.exists(report):
                figures[(m, fold)] = nadir_figures(report)
    for key, ci_key, title in (("roc_auc", "roc_auc_ci", "ROC-AUC"), ("recall_at_1pct_fpr", "recall_ci", "recall at 1 % FPR")):
        print(f"\n{title} on the held-out scenario (95 % bootstrap CI):\n")
        print("| model | " + " | ".join(f"scenario {f[5:]} held out" if f[5:].isdigit() else f[5:] for f in folds) + " | mean |")
        print("|---|" + "---|" * (len(folds) + 1))
        for m in models:
            vals = [figures.get((m, f), {}).get(key) for f in folds]
            got = [v for v in vals if v is not None]
            mean = f"{sum(got) / len(got):.3f}" if len(got) == len(folds) else "n/a"
            print(f"| {m} | " + " | ".join(cell(figures.get((m, f), {}), key, ci_key) for f in folds) + f" | {mean} |")


if __name__ == "__main__":
    cmd = sys.argv[1]
    if cmd == "split":
        split(sys.argv[2], sys.argv[3])
    elif cmd == "sklearn":
        sklearn_peers(sys.argv[2], sys.argv[3])
    elif cmd == "table":
        table(sys.argv[2], sys.argv[3:])
    else:
        sys.exit(__doc__)
