"""``python -m jobs.audiences refresh --dt YYYY-MM-DD``: the daily audiences step outside the CLI
(spark-submit, schedulers); see :func:`jobs.audiences.daily.main`."""

from jobs.audiences.daily import main

if __name__ == "__main__":
    from cdp.run import exit_with

    exit_with(main)
