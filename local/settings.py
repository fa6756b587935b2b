"""Where `make run` keeps its state, shared by `local.run` and `local.send`."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent


def state_dir() -> Path:
    return Path(os.environ.get("LOCAL_STATE_DIR") or ROOT / ".local")


def state_file() -> Path:
    return state_dir() / "run.json"


def notifications_file() -> Path:
    return Path(os.environ.get("NOTIFICATIONS_FILE") or state_dir() / "notifications.jsonl")


def read_state() -> dict[str, Any]:
    try:
        return json.loads(state_file().read_text())
    except FileNotFoundError:
        raise SystemExit(f"no local run found ({state_file()} is missing): start one with `make run`") from None
