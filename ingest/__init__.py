"""Ingest: the pure transforms between a landed file and the silver row.

Landing discovery and file checks (``ingest.landing``), parsing, typing, row checks and deduplication
(``ingest.rows``), and PII protection at the door (``ingest.protect``). The job that reads files and writes
bronze, quarantine and silver is ``jobs.ingest``.
"""
