"""pandas + scikit-learn side of bench/dataset/run.sh: the same steps as nadir's `prepare`
example (load, median imputation of NaN/inf, standard scaling, PCA keeping 95 % variance)."""
import sys
import time

import numpy as np
import pandas as pd
from sklearn.decomposition import PCA
from sklearn.impute import SimpleImputer
from sklearn.preprocessing import StandardScaler

path = sys.argv[1]
label = sys.argv[2] if len(sys.argv) > 2 else "label"
t0 = time.perf_counter()
df = pd.read_csv(path)
y = df.pop(label).to_numpy()
x = df.to_numpy(copy=True)  # writable (pandas copy-on-write views are read-only)
del df
load_s = time.perf_counter() - t0
t1 = time.perf_counter()
nonfinite = int((~np.isfinite(x)).sum())
x[~np.isfinite(x)] = np.nan
x = SimpleImputer(strategy="median").fit_transform(x)
x = StandardScaler().fit_transform(x)
pca = PCA(n_components=0.95)
out = pca.fit_transform(x)
prep_s = time.perf_counter() - t1
print(
    f"pandas+sklearn rows={out.shape[0]} cols={x.shape[1]} nonfinite={nonfinite} components={out.shape[1]} "
    f"variance_kept={pca.explained_variance_ratio_.sum():.4f} load_s={load_s:.2f} preprocess_s={prep_s:.2f} "
    f"total_s={time.perf_counter() - t0:.2f} checksum={np.abs(out.ravel()[:1000]).sum():.4f}"
)
