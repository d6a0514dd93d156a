"""Platform plumbing for the CDP pipeline: settings, the Spark session factory, the Delta lake catalog,
the command line and the demo population. Domain logic lives in ``identity``, ``tags``, ``audiences`` and
``quality``; contracts live in ``schemas``."""

__version__ = "0.1.0"
