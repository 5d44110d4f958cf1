"""A stand-in recipe for the injection tests: started by the real supervisor under torchrun, it
reads the run's config.yaml and records what arrived (argv and the settings), then succeeds."""
import argparse
import os
import sys

from core.config import load_config, to_dict
from core.rundir import RunDir, write_json

if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--config", required=True)
    ap.add_argument("--resume", action="store_true")
    args = ap.parse_args()
    run = RunDir.of_config(args.config)
    if int(os.environ.get("RANK", 0)) == 0:
        cfg = load_config(args.config)
        write_json(run.path / "seen.json", {"argv": sys.argv, "config": to_dict(cfg)})  # this test's own file
        write_json(run.result, {"status": "succeeded"})
