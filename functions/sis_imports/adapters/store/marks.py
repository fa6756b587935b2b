"""Marks: a batch stuck in a state (alerted once), and a root account's first completed reconcile pass."""

from __future__ import annotations

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
        response = self._client.get_item(TableName=self._table, Key=self.key(root_account_uuid, MARKER_ID),
                                         ConsistentRead=True)
        return "Item" in response

    def mark_reconciled(self, root_account_uuid: str, when: str) -> None:
        self._client.put_item(TableName=self._table, Item={
            **self.key(root_account_uuid, MARKER_ID), "first_reconciled_at": {"S": when}})
