"""The school's own history: one baseline item per root account and import shape, one rhythm item per
root account. Each is read with one GetItem and written, only when it changed, with one UpdateItem guarded
by its `version` (a concurrent pass loses the race and tries again next pass: nothing is lost, since
both are rebuilt from Canvas's listing). Outside the id alphabet (table.ID_PATTERN): no batch collides
with them, the query route cannot ask for them, and no index holds them."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .items import Table, _stored_item, from_attributes, to_attributes

if TYPE_CHECKING:  # loaded on first use: every function has the store, only the reconciler and notifier this
    from ...core.rhythm import Rhythm
    from ...core.unusual import Baseline

BASELINE_PREFIX = "#baseline#"
RHYTHM_ID = "#rhythm"


class History(Table):
    def _read(self, root_account_uuid: str, sis_batch_id: str, consistent: bool = True) -> dict[str, Any] | None:
        response = self._client.get_item(TableName=self._table, Key=self.key(root_account_uuid, sis_batch_id),
                                          ConsistentRead=consistent)
        item = response.get("Item")
        # DynamoDB's numbers come as Decimal: core/unusual and core/rhythm read them, as from a stream image
        return from_attributes(item) if item else None

    def _write(self, root_account_uuid: str, sis_batch_id: str, item: dict[str, Any], version: int,
               optional: tuple[str, ...] = ()) -> bool:
        """The whole item, with UpdateItem (what the notifier may do to the table's items: no PutItem), guarded by
        its version; `optional` attributes absent from `item` are removed. False when another writer got there
        first (its version is newer)."""
        names = {f"#a{i}": name for i, name in enumerate(item)}
        values = {f":v{i}": value for i, value in enumerate(to_attributes(item).values())}
        gone = [name for name in optional if name not in item]
        names.update({f"#r{i}": name for i, name in enumerate(gone)})
        expression = "SET " + ", ".join(f"#a{i} = :v{i}" for i in range(len(item)))
        if gone:
            expression += " REMOVE " + ", ".join(f"#r{i}" for i in range(len(gone)))
        if version:
            condition, values[":expected"] = "#a_version = :expected", {"N": str(version)}
            names["#a_version"] = "version"
        else:
            condition = "attribute_not_exists(sis_batch_id)"
        try:
            self._client.update_item(TableName=self._table, Key=self.key(root_account_uuid, sis_batch_id),
                                     UpdateExpression=expression, ConditionExpression=condition,
                                     ExpressionAttributeNames=names, ExpressionAttributeValues=values)
            return True
        except Exception as exc:
            _stored_item(exc)  # re-raises anything but a lost race
            return False

    def baseline(self, root_account_uuid: str, shape: str, consistent: bool = True) -> Baseline:
        """`consistent=False` reads at half the price and may miss the latest write (its version then fails
        the next save's guard, and the caller reads again, consistently)."""
        from ...core.unusual import baseline_from_item

        return baseline_from_item(root_account_uuid, shape,
                                  self._read(root_account_uuid, BASELINE_PREFIX + shape, consistent))

    def save_baseline(self, baseline: Baseline) -> bool:
        from ...core.unusual import BASELINE_FORMER_ATTRIBUTES, baseline_item

        return self._write(baseline.root_account_uuid, BASELINE_PREFIX + baseline.shape, baseline_item(baseline),
                           baseline.version, optional=BASELINE_FORMER_ATTRIBUTES)

    def rhythm(self, root_account_uuid: str) -> Rhythm | None:
        """None when the root account has none yet (its first pass seeds it from a longer listing)."""
        from ...core.rhythm import rhythm_from_item

        item = self._read(root_account_uuid, RHYTHM_ID)
        return rhythm_from_item(root_account_uuid, item) if item else None

    def save_rhythm(self, rhythm: Rhythm) -> bool:
        from ...core.rhythm import rhythm_item

        return self._write(rhythm.root_account_uuid, RHYTHM_ID, rhythm_item(rhythm), rhythm.version,
                           optional=("gap", "resumed", "hostname"))

    def mark_unusual(self, root_account_uuid: str, sis_batch_id: str, figures: list[str]) -> None:
        """The figures an end was unusual in, on its batch (the list route and `make status` show them)."""
        try:
            self._client.update_item(
                TableName=self._table, Key=self.key(root_account_uuid, sis_batch_id),
                UpdateExpression="SET #unusual = :figures", ConditionExpression="attribute_exists(sis_batch_id)",
                ExpressionAttributeNames={"#unusual": "unusual"},
                ExpressionAttributeValues={":figures": {"L": [{"S": f} for f in figures]}})
        except Exception as exc:
            _stored_item(exc)  # the batch expired meanwhile: nothing to mark
