"""Scan progress where no terminal is watching: one log line per tenth of the counted fleet read.

A nightly run of a large tenant takes minutes; these lines in the Functions log show it moving (and how
fast) without a line per page. The terminal's progress bar is in janitor_cli/scan.py.
"""

from __future__ import annotations

import logging

from shared.scan.service import ScanProgress


class TenthsLog:
    """A progress callback that logs when the read passes another 10 % of the devices Graph counted."""

    def __init__(self, logger: logging.Logger) -> None:
        self.log = logger
        self._tenth = 0

    def __call__(self, event: ScanProgress) -> None:
        if event.phase != "listing" or not event.total:
            return
        tenth = min(10, event.devices * 10 // event.total)
        if tenth < self._tenth:  # a discarded read starts again from zero
            self._tenth = 0
        if tenth <= self._tenth:
            return
        self._tenth = tenth
        rate = event.devices / event.elapsed if event.elapsed > 0 else 0.0
        self.log.info(
            "scan: %d %% read (%s of %s devices, %s pages, %d of %d partitions done, %d in flight, %s devices/s)",
            tenth * 10,
            f"{event.devices:,}",
            f"{event.total:,}",
            f"{event.pages:,}",
            event.partitions_done,
            event.partitions,
            event.partitions_in_flight,
            f"{rate:,.0f}",
        )
