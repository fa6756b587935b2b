"""Marks: a batch stuck in a state (alerted once), and a root account's first completed reconcile pass."""

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
        return {k: (float(v["N"]) if "N" in v else v.get("S")) for k, v in item.items()} if item else None

    def mark_listed(self, root_account_uuid: str, started: float) -> None:
        """One write per pass: the next pass (in any container) lists from here, less an overlap."""
        self._client.update_item(
            TableName=self._table, Key=self.key(root_account_uuid, MARKER_ID),
            UpdateExpression="SET #listed = :started", ExpressionAttributeNames={"#listed": "listed_through"},
            ExpressionAttributeValues={":started": {"N": str(round(started, 3))}})

    def mark_reconciled(self, root_account_uuid: str, when: str) -> None:
        self._client.put_item(TableName=self._table, Item={
            **self.key(root_account_uuid, MARKER_ID), "first_reconciled_at": {"S": when}})
