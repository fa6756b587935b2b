"""`expected_import_every`: a rhythm given per root account rather than learnt (core/rhythm.py measures
gaps against it).

Its own module: the reconciler and the query route check it at their cold start, without core/rhythm's weight."""

from __future__ import annotations

_UNITS = {"m": 60, "h": 3600, "d": 86400}


def parse_expected(raw: str) -> dict[str, int]:
    """`expected_import_every`: "<root_account_uuid>=<n>m|h|d" or "=off", comma-separated. 0 means off."""
    expected: dict[str, int] = {}
    for part in (p.strip() for p in raw.split(",")):
        if not part:
            continue
        uuid, _, every = part.partition("=")
        every = every.strip().lower()
        if not uuid.strip() or not (every == "off" or (every[:-1].isdigit() and every[-1:] in _UNITS)):
            raise ValueError(f"expected_import_every: {part!r} is not <root_account_uuid>=<n>m, <n>h, <n>d or off")
        expected[uuid.strip()] = 0 if every == "off" else int(every[:-1]) * _UNITS[every[-1]]
    return expected
