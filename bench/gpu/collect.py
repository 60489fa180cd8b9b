"""Gathers the GPU runs: summary.json (metrics and recipe of each) and runs.tgz (logs, reports, the fold-5 model)."""

import json
import sys
import tarfile
from pathlib import Path

root, out = Path(sys.argv[1]), Path(sys.argv[2])
summary = {}
for metrics in sorted(root.glob("**/metrics.json")):
    if "checkpoint-" in str(metrics):
        continue
    name = str(metrics.parent.relative_to(root))
    summary[name] = {
        "metrics": json.loads(metrics.read_text()),
        "recipe": json.loads((metrics.parent / "training_config.json").read_text()),
    }
summary["_unfinished"] = sorted(
    log.stem
    for log in (root / "logs").glob("*.log")  # a log "NAME-vV" or "NAME-sS" names its run folder's parts
    if not any(all(part in key for part in log.stem.rsplit("-", 1)) for key in summary)
)
(out / "summary.json").write_text(json.dumps(summary, indent=1))
with tarfile.open(out / "runs.tgz", "w:gz") as tar:
    for path in sorted(root.rglob("*")):
        relative = path.relative_to(root)
        if (
            path.is_file()
            and "checkpoint-" not in str(relative)
            and path.name != "features.safetensors"
            and (path.suffix != ".safetensors" or relative.parts[0] == "fold5-s0")
        ):
            tar.add(path, arcname=str(relative))
print(
    json.dumps(
        {
            k: (v["metrics"]["accuracy"], v["metrics"].get("seconds_per_epoch")) if k[0] != "_" else v
            for k, v in summary.items()
        },
        indent=1,
    )
)
