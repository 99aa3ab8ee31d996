"""scikit-learn's HistGradientBoostingClassifier and RandomForestClassifier (defaults) on
NSL-KDD, KDDTrain+ -> KDDTest+, beside nadir (bench/quality/nslkdd.sh).

    python3 nslkdd_peers.py TRAIN.txt.gz TEST.txt.gz OUT.json

The same columns nadir reads: the 38 numeric fields as they are and protocol_type, service and
flag one-hot over the categories seen in KDDTrain+ (unseen test categories are all zeros, as
in nadir); the difficulty field is left out. Binary label: normal vs every attack. Metrics and
intervals as in k8s_folds.py.
"""
import csv
import gzip
import json
import sys
import time

from k8s_folds import bootstrap

CATEGORICAL = (1, 2, 3)
LABEL, DIFFICULTY = 41, 42


def read(path):
    with gzip.open(path, "rt", newline="") as f:
        return [r for r in csv.reader(f) if r]


def encode(rows, categories):
    import numpy as np

    x = []
    for r in rows:
        numeric = [float(r[i]) for i in range(LABEL) if i not in CATEGORICAL]
        onehot = [1.0 if r[c] == v else 0.0 for c in CATEGORICAL for v in categories[c]]
        x.append(numeric + onehot)
    y = [0 if r[LABEL] == "normal" else 1 for r in rows]
    return np.array(x), np.array(y)


def main(train_path, test_path, out_path):
    from sklearn.ensemble import HistGradientBoostingClassifier, RandomForestClassifier

    train, test = read(train_path), read(test_path)
    categories = {c: sorted({r[c] for r in train}) for c in CATEGORICAL}
    xtr, ytr = encode(train, categories)
    xte, yte = encode(test, categories)
    out = {}
    for name, model in (
        ("sklearn-hgb", HistGradientBoostingClassifier(random_state=0)),
        ("sklearn-rf", RandomForestClassifier(random_state=0, n_jobs=2)),
    ):
        started = time.time()
        model.fit(xtr, ytr)
        scores = model.predict_proba(xte)[:, 1]
        out[name] = bootstrap(yte, scores) | {"fit_seconds": time.time() - started}
        print(f"{name}: ROC-AUC {out[name]['roc_auc']:.3f}", file=sys.stderr)
    json.dump(out, open(out_path, "w"), indent=1)


if __name__ == "__main__":
    if len(sys.argv) != 4:
        sys.exit(__doc__)
    main(*sys.argv[1:])
