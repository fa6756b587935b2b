"""`make run`'s school: a second simulated Canvas (its own root account, on host localhost) that imports on
an hourly rhythm, for issue 17's story in `make simulate`: unusual ends and missing imports.

The story needs the school's past: 24 hourly imports a new deployment finds (no Live Event reached it),
then an import that deletes 4,800 enrollments, then three silent hours. Nothing may depend on today's
date, so the past is placed when `make simulate` asks (`POST /_local/school`, local-only), relative to
then. Until that moment the reconciler does not read the school: its first pass would otherwise learn an
empty rhythm, and the history placed later would come in as imports never heard of, each alerted. When
asked, under the reconciler's lock (no scheduled pass in between): the history is placed, the school's
first pass learns it (baselines, rhythm; no alert), and the 4,800-deletion import runs, three hours ago,
with its Live Events timed then. The notifier knows the school from the start (CANVAS_INSTANCES): it
reads each end's figures from it.

Once per run: the school's history is the table's (moto's memory); a second `make simulate` says so.
Once its story has come to the import that resumed the rhythm, the school goes on importing hourly for
as long as the run lasts (each end alerted as routine), as a school does: no gap is claimed again.
"""

from __future__ import annotations

import threading
from datetime import datetime, timedelta, timezone
from typing import Any

SCHOOL_CONTROL = "POST /_local/school"  # local only: no such route is deployed
SCHOOL_HOST = "localhost"  # another host than the first simulator's 127.0.0.1: the instances are told apart by it
HISTORY_IMPORTS = 24
HISTORY_ENDS_HOURS_AGO = 4  # the last routine import; the unusual one an hour later
UNUSUAL_HOURS_AGO = 3  # then nothing: three silent hours, twice the learnt allowance (1.5 h for hourly)
DELETED = 4800


def account(root_accounts: list[str] | None, hostnames: list[str] | None) -> tuple[bool, str | None, str]:
    """Whether the run has a school, its root account uuid (None: a new one), and what the banner says."""
    if hostnames and hostnames != ["*"] and (SCHOOL_HOST not in hostnames or hostnames[0] == SCHOOL_HOST):
        return False, None, f"no school: SIS_HOSTNAMES would refuse its events (list {SCHOOL_HOST} after yours)"
    if root_accounts and root_accounts != ["*"]:
        if len(root_accounts) < 2:
            return False, None, "no school: SIS_ROOT_ACCOUNTS lists one root account (list a second for the school)"
        return True, root_accounts[1], f"root account {root_accounts[1]} (the second in SIS_ROOT_ACCOUNTS)"
    return True, None, "a root account of its own"


def instance_url(simulator: Any) -> str:
    """The school as the reconciler and the notifier know it: its own host, so that its batches find it."""
    return f"http://{SCHOOL_HOST}:{simulator.base_url.rsplit(':', 1)[1]}"


class School:
    """The school's simulator and its reconciler instance, held back until `make simulate` opens it."""

    def __init__(self, simulator: Any, reconciler: Any, app: Any, stop: threading.Event | None = None):
        self.simulator, self.reconciler = simulator, reconciler
        self._stop = stop or threading.Event()
        self.check_seconds = 60.0
        url = instance_url(simulator)
        # Built with the others from CANVAS_INSTANCES; the passes leave it out until the story starts.
        self.instance = next(i for i in app.instances if i.url == url)
        app.instances.remove(self.instance)
        self._app = app
        self._opened: dict[str, Any] | None = None
        self._lock = threading.Lock()

    def open(self, now: datetime | None = None) -> tuple[int, dict[str, Any]]:
        with self._lock:
            if self._opened is not None:
                return 409, {"error": "the school's story was played already in this run (its history is in the "
                                      "table now); restart `make run` to play it again", **self._opened}
            now = now or datetime.now(timezone.utc)
            history = self.simulator.history(HISTORY_IMPORTS, last_at=now - timedelta(hours=HISTORY_ENDS_HOURS_AGO))
            with self.reconciler.lock:  # no scheduled pass between the first pass and the unusual import
                self._app.instances.append(self.instance)
                first = self.reconciler.run_pass("the school's first pass")
                placed = now - timedelta(hours=UNUSUAL_HOURS_AGO)
                unusual = self.simulator.school_import(placed, deleted=DELETED)
                # Placed in the past, after a first pass made now: a pass lists only what was created since the
                # last one began (its high-water mark), so the mark goes back to when that import was created, as
                # if the first pass had run then.
                self.instance.listed_through = placed.timestamp()
                uuid, store = getattr(self.instance, "root_account_uuid", None), getattr(self._app, "_store", None)
                if uuid and store is not None:
                    store.mark_listed(uuid, placed.timestamp())
            mine = [i for i in first.get("instances") or [] if i.get("url") == self.instance.url]
            self._opened = {"root_account_uuid": self.simulator.root_account_uuid, "hostname": SCHOOL_HOST,
                            "history": [str(i) for i in history], "unusual": str(unusual),
                            "first_pass": mine[0] if mine else None, "opened_at": now.strftime("%Y-%m-%dT%H:%M:%SZ")}
            threading.Thread(target=self._hourly, args=(now,), name="school", daemon=True).start()
            return 200, self._opened

    def _hourly(self, opened: datetime) -> None:
        """An import an hour after the last, once the story's resuming import has come (made after `opened`)."""
        while not self._stop.wait(self.check_seconds):
            now, last = datetime.now(timezone.utc), self.simulator.last_created()
            if last is not None and opened < last <= now - timedelta(hours=1):
                try:
                    self.simulator.school_import(now)
                except ValueError:
                    pass  # one of its imports still runs (driven by hand): the next check tries again

    def control(self, body: bytes) -> tuple[int, Any]:
        return self.open()
