"""Prints an evaluation.json's detection figures and per-attack-type table (Markdown).

    python3 bench/quality/per_attack_table.py REPORT/evaluation.json "title"
"""
import json
import sys

nan = float("nan")
e = json.load(open(sys.argv[1]))
title = sys.argv[2] if len(sys.argv) > 2 else sys.argv[1]
d = e["detection"]
ci = (d.get("intervals") or {}).get("roc_auc") or {}
print(
    f"\n{title}: {d['benign']} benign + {d['anomalies']} attack test rows; "
    f"ROC-AUC {d['roc_auc']:.3f} [{ci.get('lower', nan):.3f}, {ci.get('upper', nan):.3f}], "
    f"accuracy {e['classification']['accuracy']:.3f}, recall {d['recall']:.3f}, "
    f"FPR {d['fpr']:.3f} at threshold {d['threshold']:.4g}"
)
def at_fpr(points, target):
    """'recall [lower, upper]' at the FPR budget `target`."""
    for p in points or []:
        if abs(p["target_fpr"] - target) < 1e-12:
            ci = p.get("recall_ci") or {}
            return f"{p['recall']:.3f} [{ci.get('lower', nan):.3f}, {ci.get('upper', nan):.3f}]"
    return "n/a"


print(f"recall at 0.1 % FPR {at_fpr(d.get('recall_at_fpr'), 0.001)}, at 1 % FPR {at_fpr(d.get('recall_at_fpr'), 0.01)}")
print("| attack type | rows | ROC-AUC [95% CI] | recall at threshold | recall at 0.1% FPR | recall at 1% FPR |")
print("|---|---:|---|---:|---|---|")
for a in e["per_attack_type"]:
    ci = a.get("roc_auc_ci") or {}
    auc = a["roc_auc"] if a["roc_auc"] is not None else nan
    print(
        f"| {a['name']} | {a['rows']} | {auc:.3f} [{ci.get('lower', nan):.3f}, "
        f"{ci.get('upper', nan):.3f}] | {a['recall']:.3f} | {at_fpr(a['recall_at_fpr'], 0.001)} "
        f"| {at_fpr(a['recall_at_fpr'], 0.01)} |"
    )
