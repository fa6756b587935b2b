"""DynamoDB access for batches: one item per batch, written with optimistic conditions.

An in-order event costs one conditional UpdateItem and no read. When the condition fails
(a duplicate, a late event, or a full history) DynamoDB returns the stored item with the
failure (`ReturnValuesOnConditionCheckFailure`), the pure core decides, and at most one more
conditional write (guarded by `version`) stores the result.

Split where its work parts: items.py (the table, its items), apply.py (events), reconcile.py (the
reconciler's readings and claims), listing.py (queries), marks.py (stuck marks, the pass marker), rhythm.py (the school's baselines
and rhythm).
"""

from __future__ import annotations

from .items import MARKER_ID, ApplyResult, Reconciled, StoreConflict, from_attributes, to_attributes
from .listing import Listing
from .marks import Marks
from .reconcile import Reconciling
from .rhythm import BASELINE_PREFIX, RHYTHM_ID, History

__all__ = ["BASELINE_PREFIX", "MARKER_ID", "RHYTHM_ID", "ApplyResult", "BatchStore", "Reconciled", "StoreConflict", "from_attributes", "to_attributes"]


class BatchStore(Reconciling, Listing, Marks, History):
    """The batch table: one item per batch (root account, SIS batch id)."""
