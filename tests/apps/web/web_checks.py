"""Assertions the web tests share (a plain module: pytest puts this folder on ``sys.path``)."""

from __future__ import annotations


def refused(response, status: int, *words: str) -> str:
    """A refusal: the expected status, a JSON reason naming the problem, and never a stack trace."""
    assert response.status_code == status, response.text
    detail = response.json()["detail"]
    assert isinstance(detail, str) and "Traceback" not in detail and 'File "' not in detail
    for word in words:
        assert word in detail, detail
    return detail
