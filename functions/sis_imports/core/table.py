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

# Every batch by its first event, newest first (issue 11's list route, `GET /batches/{root_account_uuid}`):
# every batch item carries first_event_at; the reconciler's and the history's items do not, so they stay
# out. Keyed on a time that does not change (an event older than the first seen is rare) and keys only
# (issue 18): each batch costs the index one write, at its first event, not a delete and a put at every
# event as a key of last activity did. The route reads the page's items from the table (BatchGetItem).
LIST_INDEX = "batches-by-creation"
LIST_SORT_KEY = "first_event_at"

KEY_SCHEMA = [
    {"AttributeName": PARTITION_KEY, "KeyType": "HASH"},
    {"AttributeName": SORT_KEY, "KeyType": "RANGE"},
]
ATTRIBUTE_DEFINITIONS = [
    {"AttributeName": PARTITION_KEY, "AttributeType": "S"},
    {"AttributeName": SORT_KEY, "AttributeType": "S"},
]
