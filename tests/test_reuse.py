"""zoograde.reuse: nbgrader's gradebook and metadata checks behave as before, at a lower cost per notebook.

The expectations come from nbgrader and jsonschema themselves: what a stock ``Gradebook`` stores and
finds, and the error ``jsonschema.validate`` raises for the same cell metadata.
"""
from __future__ import annotations

import copy
import os
import sys
from pathlib import Path

import jsonschema
import pytest

import nbgrader.api as api
from nbgrader.nbgraderformat import common
from nbgrader.nbgraderformat.v3 import MetadataValidatorV3
from zoograde import reuse

VENV_BIN = str(Path(sys.executable).parent)  # nbgrader runs `alembic` from the PATH for a new gradebook


@pytest.fixture
def installed(monkeypatch):
    """reuse.install() in this test only, on stock nbgrader: the names are put back afterwards.

    Another test in this worker may have graded with zoo-grade in-process, which installs it for
    the rest of the process; the test starts from what nbgrader itself has.
    """
    stock = api.create_engine
    if isinstance(stock, reuse._EngineReuse):  # install() wraps once at most
        stock = stock._create
    monkeypatch.setattr(api, "create_engine", stock)
    monkeypatch.setattr(common, "jsonschema", jsonschema)
    monkeypatch.setenv("PATH", VENV_BIN + os.pathsep + os.environ.get("PATH", ""))
    reuse.install()
    reuse.install()  # a second call changes nothing
    assert isinstance(api.create_engine, reuse._EngineReuse)
    assert not isinstance(api.create_engine._create, reuse._EngineReuse)


def test_one_engine_per_gradebook_url_and_the_data_survive_close(installed, tmp_path):
    url = f"sqlite:///{tmp_path / 'gradebook.db'}?timeout=60"
    with api.Gradebook(url, "cnn-zoo") as first:
        engine = first.engine
        first.add_student("ada", first_name="Ada")
    with api.Gradebook(url, "cnn-zoo") as second:
        assert second.engine is engine   # the compiled statements stay with it
        assert second.find_student("ada").first_name == "Ada"
        with api.Gradebook(url, "cnn-zoo") as nested:  # open at once, as nbgrader's preprocessors are
            nested.add_student("bob")
        assert sorted(s.id for s in second.students) == ["ada", "bob"]
    other = f"sqlite:///{tmp_path / 'other.db'}"
    with api.Gradebook(other, "cnn-zoo") as gb:
        assert gb.engine is not engine
        assert gb.students == []


def test_a_gradebook_deleted_and_made_again_at_the_same_path_is_a_new_one(installed, tmp_path):
    path = tmp_path / "gradebook.db"
    url = f"sqlite:///{path}"
    with api.Gradebook(url, "cnn-zoo") as gb:
        gb.add_student("ada")
    path.unlink()
    with api.Gradebook(url, "cnn-zoo") as gb:  # close() disposed of the pooled connection to the old file
        assert gb.students == []
        gb.add_student("bob")
    with api.Gradebook(url, "cnn-zoo") as gb:
        assert [s.id for s in gb.students] == ["bob"]


def _cell(**nbgrader):
    meta = {"grade": True, "grade_id": "test_block", "locked": True, "points": 2, "schema_version": 3,
            "solution": False, "task": False}
    meta.update(nbgrader)
    return {"cell_type": "code", "metadata": {"nbgrader": meta}, "source": "", "outputs": [],
            "execution_count": None}


@pytest.mark.parametrize("change", [{"points": "two"}, {"grade_id": 7}, {"locked": "yes"}])
def test_a_bad_cell_gets_the_error_jsonschema_gives(installed, change):
    from nbformat import from_dict

    validator = MetadataValidatorV3()
    with pytest.raises(jsonschema.ValidationError) as stock:
        jsonschema.validate(_cell(**change)["metadata"]["nbgrader"], copy.deepcopy(validator.schema))
    for _ in range(2):  # the second time from the validator kept for the schema
        with pytest.raises(jsonschema.ValidationError) as ours:
            validator.validate_cell(from_dict(_cell(**change)))
        assert ours.value.message == stock.value.message
        assert list(ours.value.path) == list(stock.value.path)
    validator.validate_cell(from_dict(_cell()))  # a good cell passes


def test_the_schema_is_checked_once_per_process(installed, monkeypatch):
    from nbformat import from_dict

    checks = []
    cls = jsonschema.validators.validator_for(MetadataValidatorV3().schema)
    real = cls.check_schema   # bound to the class: counted, not replaced

    def counting(klass, schema, *args, **kwargs):
        checks.append(1)
        return real(schema, *args, **kwargs)

    monkeypatch.setattr(cls, "check_schema", classmethod(counting))
    common.jsonschema._validators.clear()
    for _ in range(3):  # nbgrader builds a new validator, with its own copy of the schema, each time
        MetadataValidatorV3().validate_nb(from_dict({"cells": [_cell(), _cell(grade_id="b")], "metadata": {},
                                                     "nbformat": 4, "nbformat_minor": 5}))
    assert len(checks) == 1
