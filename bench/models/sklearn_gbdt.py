"""scikit-learn peer of nadir's `gbdt` for bench/models/run.sh: HistGradientBoostingClassifier
with nadir's defaults (100 trees, learning rate 0.1, 31 leaves, depth 8, 255 bins, L2 1, no early
stopping; nadir's minimum leaf hessian of 1 is about 4 rows at p = 0.5, so min_samples_leaf=4),
on the same random 64-column rows. Phases: `train` (rows/s through one fit), `infer-1024` and
`infer-1` (rows/s through predict_proba after a fit). Prints one JSON line like the others.
"""

import argparse
import json
import resource
import time

import numpy as np
import sklearn
from sklearn.ensemble import HistGradientBoostingClassifier


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default="gbdt")
    ap.add_argument("--phase", choices=["train", "infer-1024", "infer-1"], required=True)
    ap.add_argument("--samples", type=int, default=4096)
    ap.add_argument("--seconds", type=float, default=5.0)
    args, _ = ap.parse_known_args()

    rng = np.random.default_rng(1)
    x = rng.uniform(-1.0, 1.0, (args.samples, 64)).astype(np.float32)
    y = np.arange(args.samples) % 2
    model = HistGradientBoostingClassifier(max_iter=100, learning_rate=0.1, max_leaf_nodes=31, max_depth=8,
                                           l2_regularization=1.0, min_samples_leaf=4, max_bins=255,
                                           early_stopping=False, random_state=1)
    start = time.perf_counter()
    model.fit(x, y)
    if args.phase == "train":
        rate = args.samples / (time.perf_counter() - start)
    else:
        batch = 1 if args.phase == "infer-1" else 1024
        rows = rng.uniform(-1.0, 1.0, (batch, 64)).astype(np.float32)
        model.predict_proba(rows)
        calls = 0
        start = time.perf_counter()
        while time.perf_counter() - start < args.seconds:
            model.predict_proba(rows)
            calls += 1
        rate = calls * batch / (time.perf_counter() - start)

    peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
    print(json.dumps({"impl": "sklearn", "model": "gbdt", "phase": args.phase,
                      "samples_per_s": round(rate, 1), "peak_rss_mib": round(peak_mib, 1),
                      "sklearn": sklearn.__version__}))


if __name__ == "__main__":
    main()
