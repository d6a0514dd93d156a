"""Data quality: row-level contract checks at ingestion and Great Expectations gates between stages."""
