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


def loopback_only() -> None:
    """Keeps a proxy from the environment (HTTP_PROXY…) out of the way: every call here is to 127.0.0.1."""
    for name in ("NO_PROXY", "no_proxy"):
        hosts = [h for h in os.environ.get(name, "").split(",") if h.strip()]
        os.environ[name] = ",".join([*hosts, "127.0.0.1", "localhost"])


def pid_alive(pid: Any) -> bool:
    if not isinstance(pid, int) or pid <= 0:
        return False
    try:
        os.kill(pid, 0)  # signal 0: only asks whether the process exists
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # exists, someone else's
    return True


def live_state() -> dict[str, Any] | None:
    """The running `make run`'s state, or None when there is none (or only a stale file)."""
    try:
        state = json.loads(state_file().read_text())
    except (FileNotFoundError, ValueError):
        return None
    return state if isinstance(state, dict) and pid_alive(state.get("pid")) else None


def write_state(state: dict[str, Any]) -> None:
    # 0600: in token mode it holds the shared token.
    from local.dev_keys import write_private

    write_private(state_file(), json.dumps(state, indent=2).encode())


def remove_state(pid: int) -> None:
    """Removes the state file only if it is still this run's (another run may have taken over the dir)."""
    try:
        if json.loads(state_file().read_text()).get("pid") == pid:
            state_file().unlink()
    except (FileNotFoundError, ValueError, AttributeError):
        pass


def read_state() -> dict[str, Any]:
    state = live_state()
    if state is None:
        raise SystemExit(f"no local run found ({state_file()} is missing or its process has stopped): "
                         "start one with `make run`")
    return state
