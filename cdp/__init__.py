"""The platform, the ground floor of the house: settings (``cdp.settings``), the Spark session factory
(``cdp.engine``), the Delta lake catalog with per-date run context (``cdp.lake``, ``cdp.run``), SQL access
(``cdp.sql``) and resource measurement (``cdp.measure``). Nothing here imports a stage, a job or an app."""

__version__ = "0.1.0"
