"""Reading many batches: the open ones (the reconciler's), and a root account's recent ones (the query API's).
Both indexes are keys only: the items come from the table, 100 to a BatchGetItem."""

from __future__ import annotations

import time
from typing import Any

from ...core.batch import Batch
from ...core.table import LIST_INDEX, LIST_SORT_KEY, OPEN_INDEX, OPEN_SINCE, PARTITION_KEY, SORT_KEY
from .items import Table, from_attributes, to_attributes

BATCH_GET_KEYS = 100  # DynamoDB's most keys in one BatchGetItem
BATCH_GET_ATTEMPTS = 5  # a throttled table leaves keys unprocessed: asked again, backing off


class UnreadBatches(Exception):
    """DynamoDB left keys unprocessed through every attempt (throttled): the caller fails and is retried."""


class Listing(Table):
    """Queries of the sparse indexes, never a scan."""

    def open_batches(self, root_account_uuid: str) -> list[Batch]:
        """Every batch of the root account not in an end state: one query of the sparse index (keys
        only), then the items themselves, 100 to a BatchGetItem, in the index's order. A batch that has
        ended (or expired) since the index answered is left out, as the index would soon leave it out."""
        keys, start = [], None
        while True:
            kwargs: dict[str, Any] = {"ExclusiveStartKey": start} if start else {}
            page = self._client.query(
                TableName=self._table, IndexName=OPEN_INDEX,
                KeyConditionExpression="#pk = :pk", ExpressionAttributeNames={"#pk": PARTITION_KEY},
                ExpressionAttributeValues={":pk": {"S": root_account_uuid}}, **kwargs,
            )
            keys += [{PARTITION_KEY: item[PARTITION_KEY], SORT_KEY: item[SORT_KEY]} for item in page.get("Items", [])]
            start = page.get("LastEvaluatedKey")
            if not start:
                break
        found: dict[str, dict[str, Any]] = {}
        for first in range(0, len(keys), BATCH_GET_KEYS):
            for item in self._batch_get(keys[first:first + BATCH_GET_KEYS]):
                found[item[SORT_KEY]["S"]] = item
        batches = []
        for key in keys:
            item = found.get(key[SORT_KEY]["S"])
            if item is not None and OPEN_SINCE in item:
                plain = from_attributes(item)
                plain.setdefault("account_id", "")
                batches.append(Batch.from_item(plain))
        return batches

    def _batch_get(self, keys: list[dict[str, Any]], what: str = "open batches") -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = []
        if not keys:
            return items
        wanted = {self._table: {"Keys": keys}}
        for attempt in range(BATCH_GET_ATTEMPTS):
            response = self._client.batch_get_item(RequestItems=wanted)
            items += response.get("Responses", {}).get(self._table, [])
            wanted = response.get("UnprocessedKeys") or {}
            if not wanted:
                return items
            time.sleep(0.05 * 2**attempt)  # DynamoDB's advice for unprocessed keys: back off, ask again
        raise UnreadBatches(f"DynamoDB left {len(wanted[self._table]['Keys'])} {what} unread after "
                            f"{BATCH_GET_ATTEMPTS} attempts (throttled?)")

    def recent(
        self,
        root_account_uuid: str,
        *,
        state: str | None = None,
        outcome: str | None = None,
        unusual: bool | None = None,
        since: str | None = None,
        limit: int = 50,
        start: dict[str, str] | None = None,
        max_evaluated: int = 1000,
    ) -> tuple[list[Batch], dict[str, str] | None]:
        """The root account's batches, newest first event first: up to `limit` of them, and the key to go
        on from (None when there are no more). Queries of the list index (keys only, never a scan), then
        the items themselves, 100 to a BatchGetItem.

        `since` (Canvas's event_time format) bounds the index key: first event at or after it.
        `state`, `outcome` and `unusual` (the end was found unusual in some figure, or not) filter the
        items read, so a page may take several queries; after `max_evaluated` index entries the batches
        found so far come back with the key to go on from (fewer than `limit`, and more may follow). The
        key is the index's own (root account, batch id, first_event_at), as plain strings. A batch that
        expired since the index answered is left out, as the index would soon leave it out.
        """
        names = {"#pk": PARTITION_KEY}
        values: dict[str, Any] = {":pk": root_account_uuid}
        condition = "#pk = :pk"
        if since is not None:
            condition += " AND #at >= :since"
            names["#at"] = LIST_SORT_KEY
            values[":since"] = since
        filtered = state is not None or outcome is not None or unusual is not None

        def wanted(batch: Batch) -> bool:
            return ((state is None or batch.workflow_state.value == state)
                    and (outcome is None or batch.outcome == outcome)
                    and (unusual is None or bool(batch.unusual) == unusual))

        batches: list[Batch] = []
        evaluated, key = 0, start
        while True:
            room = limit - len(batches)
            kwargs: dict[str, Any] = {"ExclusiveStartKey": to_attributes(key)} if key else {}
            page = self._client.query(
                TableName=self._table, IndexName=LIST_INDEX, KeyConditionExpression=condition,
                ExpressionAttributeNames=names, ExpressionAttributeValues=to_attributes(values),
                ScanIndexForward=False,
                # Unfiltered, exactly what is wanted; filtered, a fuller page, since some will not match.
                Limit=min(BATCH_GET_KEYS, max(room, min(100, max_evaluated)) if filtered else room), **kwargs,
            )
            entries = [from_attributes(e) for e in page.get("Items", [])]
            evaluated += len(entries)
            last = page.get("LastEvaluatedKey")
            keys = [{PARTITION_KEY: {"S": root_account_uuid}, SORT_KEY: {"S": str(e[SORT_KEY])}} for e in entries]
            found = {str(item[SORT_KEY]["S"]): item for item in self._batch_get(keys, "listed batches")}
            for position, entry in enumerate(entries, start=1):
                item = found.get(str(entry[SORT_KEY]))
                if item is None or LIST_SORT_KEY not in item:
                    continue
                plain = from_attributes(item)
                plain.setdefault("account_id", "")
                batch = Batch.from_item(plain)
                if not wanted(batch):
                    continue
                batches.append(batch)
                if len(batches) == limit:
                    more = position < len(entries) or last is not None
                    return batches, ({PARTITION_KEY: root_account_uuid, SORT_KEY: str(entry[SORT_KEY]),
                                      LIST_SORT_KEY: str(entry[LIST_SORT_KEY])} if more else None)
            if not last:
                return batches, None
            key = {name: str(value) for name, value in from_attributes(last).items()}
            if evaluated >= max_evaluated:
                return batches, key
