"""The batch table's shape, shared by the stack, the store and the local run (no AWS import)."""

PARTITION_KEY = "root_account_uuid"
SORT_KEY = "sis_batch_id"
TTL_ATTRIBUTE = "expires_at"
STREAM_VIEW_TYPE = "NEW_AND_OLD_IMAGES"

# Ids become these keys and URL path segments: ingest accepts, and the query route asks for, only these.
ID_PATTERN = r"^[A-Za-z0-9_.:~-]{1,128}$"

# A sparse index of the batches not in an end state: only their items carry OPEN_SINCE (their
# first_event_at). The reconciler finds open batches with one query, never a scan. Keys only (issue 18):
# a projection of what every event changes (state, times, version) would rewrite the entry at each event
# (a write unit each); the few open batches are read from the table instead (BatchGetItem).
OPEN_INDEX = "open-batches"
OPEN_SINCE = "open_since"
OPEN_INDEX_PROJECTION: list[str] = []  # KEYS_ONLY

# Every batch by last activity (issue 11's list route, `GET /batches/{root_account_uuid}`): every batch
# item carries last_event_at; the reconciler's marker item does not, so it stays out. The projection is
# what the batch view shows without its history (and `outcome` and `unusual`, which the route filters on).
ACTIVITY_INDEX = "batches-by-activity"
ACTIVITY_SORT_KEY = "last_event_at"
ACTIVITY_INDEX_PROJECTION = ["workflow_state", "event_time", "first_event_at", "account_id", "root_account_id",
                             "hostname", "terminal", "outcome", "unusual"]

KEY_SCHEMA = [
    {"AttributeName": PARTITION_KEY, "KeyType": "HASH"},
    {"AttributeName": SORT_KEY, "KeyType": "RANGE"},
]
ATTRIBUTE_DEFINITIONS = [
    {"AttributeName": PARTITION_KEY, "AttributeType": "S"},
    {"AttributeName": SORT_KEY, "AttributeType": "S"},
]
