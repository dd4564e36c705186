"""The test helpers that stand in for a step of nbgrader's (tests/nbfixtures.py)."""

from __future__ import annotations

import nbfixtures as fx
import pytest
from nbgrader.api import Gradebook, get_alembic_version
from sqlalchemy import create_engine, inspect, text


def _tables_and_revision(url: str) -> tuple[dict, str]:
    engine = create_engine(url)
    try:
        found = inspect(engine)
        tables = {t: sorted(c["name"] for c in found.get_columns(t))
                  for t in found.get_table_names()}
        with engine.connect() as conn:
            revision = conn.execute(text("SELECT version_num FROM alembic_version")).scalar_one()
    finally:
        engine.dispose()
    return tables, revision


@pytest.mark.slow  # nbgrader's own way runs the alembic command (seconds)
def test_new_gradebook_is_what_nbgrader_makes_of_an_empty_database(tmp_path):
    ours, theirs = f"sqlite:///{tmp_path / 'ours.db'}", f"sqlite:///{tmp_path / 'theirs.db'}"
    fx.new_gradebook(ours)
    Gradebook(theirs).close()
    assert _tables_and_revision(ours) == _tables_and_revision(theirs)
    assert fx.alembic_head() == get_alembic_version()
    with Gradebook(ours) as gb:  # nbgrader opens it as one of its own
        gb.add_assignment("a1")
        assert [a.name for a in gb.assignments] == ["a1"]
