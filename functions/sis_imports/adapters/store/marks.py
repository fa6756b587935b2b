"""Marks: a batch stuck in a state (alerted once), a root account's first completed reconcile pass and its
high-water mark, and the import ends whose figures Canvas did not give when they alerted (read again later)."""

from __future__ import annotations

from typing import Any

from .items import MARKER_ID, Table, _stored_item


class Marks(Table):
    """Single conditional writes that the notifier or the reconciler act on."""

    def mark_stuck(self, root_account_uuid: str, sis_batch_id: str, state: str) -> bool:
        """Record once that the batch is stuck in `state` (its stream record makes the notifier alert).

        False when it was already marked for that state, or has moved on meanwhile.
        """
        try:
            self._client.update_item(
                TableName=self._table,
                Key=self.key(root_account_uuid, sis_batch_id),
                UpdateExpression="SET #stuck = :state",
                ConditionExpression="#state = :state AND (attribute_not_exists(#stuck) OR #stuck <> :state)",
                ExpressionAttributeNames={"#stuck": "stuck_state", "#state": "workflow_state"},
                ExpressionAttributeValues={":state": {"S": state}},
            )
            return True
        except Exception as exc:
            _stored_item(exc)
            return False

    def reconciled_before(self, root_account_uuid: str) -> bool:
        """Whether a reconcile pass for this root account has completed before (its marker item)."""
        return self.pass_marker(root_account_uuid) is not None

    def pass_marker(self, root_account_uuid: str) -> dict[str, Any] | None:
        """The root account's marker: None before its first completed pass; `listed_through` (epoch seconds)
        is when the last successful pass started, the high-water mark of the next one's listing."""
        response = self._client.get_item(TableName=self._table, Key=self.key(root_account_uuid, MARKER_ID),
                                         ConsistentRead=True)
        item = response.get("Item")
        if not item:
            return None
        return {k: (float(v["N"]) if "N" in v else sorted(v["SS"]) if "SS" in v else v.get("S"))
                for k, v in item.items()}

    def mark_listed(self, root_account_uuid: str, started: float) -> None:
        """One write per pass: the next pass (in any container) lists from here, less an overlap."""
        self._client.update_item(
            TableName=self._table, Key=self.key(root_account_uuid, MARKER_ID),
            UpdateExpression="SET #listed = :started", ExpressionAttributeNames={"#listed": "listed_through"},
            ExpressionAttributeValues={":started": {"N": str(round(started, 3))}})

    def mark_reconciled(self, root_account_uuid: str, when: str) -> None:
        self._client.update_item(
            TableName=self._table, Key=self.key(root_account_uuid, MARKER_ID),
            UpdateExpression="SET #first = :when", ExpressionAttributeNames={"#first": "first_reconciled_at"},
            ExpressionAttributeValues={":when": {"S": when}})

    def owe_figures(self, root_account_uuid: str, sis_batch_id: str) -> bool:
        """Note on the root account's marker that this end's figures are owed: the next pass asks for them
        again (`recheck_figures`). False before the root account's first pass (nothing is compared yet)."""
        try:
            self._client.update_item(
                TableName=self._table, Key=self.key(root_account_uuid, MARKER_ID),
                UpdateExpression="ADD #owed :id", ConditionExpression="attribute_exists(#first)",
                ExpressionAttributeNames={"#owed": "figures_owed", "#first": "first_reconciled_at"},
                ExpressionAttributeValues={":id": {"SS": [sis_batch_id]}})
            return True
        except Exception as exc:
            _stored_item(exc)
            return False

    def take_owed_figures(self, root_account_uuid: str, sis_batch_ids: list[str]) -> None:
        """Off the marker, before each is asked for again: an end owed again after its recheck is kept."""
        self._client.update_item(
            TableName=self._table, Key=self.key(root_account_uuid, MARKER_ID),
            UpdateExpression="DELETE #owed :ids", ExpressionAttributeNames={"#owed": "figures_owed"},
            ExpressionAttributeValues={":ids": {"SS": sis_batch_ids}})

    def recheck_figures(self, root_account_uuid: str, sis_batch_id: str) -> bool:
        """Count one more recheck on the batch: its stream record makes the notifier read the end's figures
        again. False when the batch is gone (expired)."""
        try:
            self._client.update_item(
                TableName=self._table, Key=self.key(root_account_uuid, sis_batch_id),
                UpdateExpression="ADD #rechecks :one", ConditionExpression="attribute_exists(#state)",
                ExpressionAttributeNames={"#rechecks": "figures_rechecks", "#state": "workflow_state"},
                ExpressionAttributeValues={":one": {"N": "1"}})
            return True
        except Exception as exc:
            _stored_item(exc)
            return False
