"""The production tests: Dagster on a real PostgreSQL with deployment/'s configuration.

They need a PostgreSQL server whose user may create databases, given as INFERENCE_TEST_PG_URL
(e.g. postgresql://postgres@127.0.0.1:5432/test; .ci/run sets it). Without it every test in
this folder is skipped with a message saying so, and `make test` still passes. Each session
creates its own database `inference_test_<hex>` on that server and drops it at the end.
"""

from __future__ import annotations

import os
import time
import uuid
from pathlib import Path

import pytest

PG_URL_ENV = "INFERENCE_TEST_PG_URL"
FIGURES = Path(__file__).resolve().parents[2] / "benchmarks" / "results" / "production_backfill.json"
SESSION_START = time.time()
HERE = Path(__file__).resolve().parent
SKIP_REASON = (
    f"production tests need PostgreSQL: set {PG_URL_ENV} to a server where the user may create databases, "
    f"e.g. `{PG_URL_ENV}=postgresql://postgres@127.0.0.1:5432/test make test` (CI sets it in .ci/run)"
)


def pytest_collection_modifyitems(config, items) -> None:
    if os.environ.get(PG_URL_ENV):
        return
    skip = pytest.mark.skip(reason=SKIP_REASON)
    for item in items:
        if HERE in Path(str(item.fspath)).resolve().parents:
            item.add_marker(skip)


def _admin_connection(url):
    import psycopg2

    connection = psycopg2.connect(
        host=url.host, port=url.port or 5432, user=url.username, password=url.password or "", dbname=url.database
    )
    connection.autocommit = True
    return connection


@pytest.fixture(scope="session")
def pg_database() -> dict[str, str]:
    """A fresh database on INFERENCE_TEST_PG_URL's server, as the DAGSTER_PG_* variables; dropped at the end."""
    from sqlalchemy.engine import make_url

    url = make_url(os.environ[PG_URL_ENV])
    name = f"inference_test_{uuid.uuid4().hex[:12]}"
    connection = _admin_connection(url)
    with connection.cursor() as cursor:
        cursor.execute(f'CREATE DATABASE "{name}"')
    connection.close()
    try:
        yield {
            "DAGSTER_PG_HOST": url.host or "127.0.0.1",
            "DAGSTER_PG_PORT": str(url.port or 5432),
            "DAGSTER_PG_USERNAME": url.username or "postgres",
            "DAGSTER_PG_PASSWORD": url.password or "",
            "DAGSTER_PG_DB": name,
        }
    finally:
        connection = _admin_connection(url)
        with connection.cursor() as cursor:
            cursor.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        connection.close()


def pytest_terminal_summary(terminalreporter) -> None:
    """The backfill figures the production tests measured in this session (xdist workers write them)."""
    if FIGURES.exists() and FIGURES.stat().st_mtime >= SESSION_START:
        terminalreporter.write_sep("-", "production backfill figures (benchmarks/results/production_backfill.json)")
        terminalreporter.write_line(FIGURES.read_text().rstrip())
