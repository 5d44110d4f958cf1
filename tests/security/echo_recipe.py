"""A stand-in recipe for the injection tests: started by the real supervisor under torchrun, it
reads the run's config.yaml and records what arrived (argv and the settings), then succeeds."""
import argparse
import json
import os
import sys
from pathlib import Path

from core.config import load_config, to_dict

if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--config", required=True)
    ap.add_argument("--resume", action="store_true")
    args = ap.parse_args()
    run_dir = Path(args.config).parent
    if int(os.environ.get("RANK", 0)) == 0:
        cfg = load_config(args.config)
        (run_dir / "seen.json").write_text(json.dumps({"argv": sys.argv, "config": to_dict(cfg)}))
        (run_dir / "result.json").write_text(json.dumps({"status": "succeeded"}))
