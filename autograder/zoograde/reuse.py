"""Two costs nbgrader pays again for every notebook, paid once per grading worker instead.

A grading worker grades many notebooks with nbgrader's ``Autograde``, and nbgrader repeats two
pieces of work for each, whatever was graded before in the same process:

* **A new database engine per** ``Gradebook``. Grading one notebook opens about eleven
  gradebooks (the converter and five preprocessors each open their own), and each builds a new
  SQLAlchemy engine, so SQLAlchemy's cache of compiled statements, which lives on the engine,
  starts empty every time: every query is compiled again. :func:`install` keeps one engine per
  URL and connection options for the whole process. ``Gradebook.close()`` still disposes of it,
  which closes its pooled connections as before; the compiled statements stay.
* **The metadata schema checked per cell.** ``CheckCellMetadata`` calls ``jsonschema.validate``
  on every graded cell, which checks the schema itself against its meta-schema each time
  (about 1.3 ms here) before checking the cell (0.05 ms). Here a schema is checked once, and
  a cell's error is the one ``jsonschema.validate`` would raise (its ``best_match``).

Only zoo-grade's workers install this (:func:`zoograde.batch.grade_one`). Plain
``nbgrader autograde`` runs nbgrader as it is, and grades the same.
"""
from __future__ import annotations

import json
import threading

_lock = threading.Lock()


def install() -> None:
    """Patch this process's nbgrader (idempotent: a name already patched is left as it is)."""
    with _lock:
        import jsonschema
        import nbgrader.api as api
        from nbgrader.nbgraderformat import common

        if not isinstance(api.create_engine, _EngineReuse):
            api.create_engine = _EngineReuse(api.create_engine)
        if not isinstance(common.jsonschema, _SchemaCheckedOnce):
            common.jsonschema = _SchemaCheckedOnce(jsonschema)


class _EngineReuse:
    """``create_engine`` that gives the same engine for the same URL and options."""

    def __init__(self, create):
        self._create = create
        self._engines: dict = {}
        self._lock = threading.Lock()

    def __call__(self, url, **options):
        key = (str(url), tuple(sorted((k, repr(v)) for k, v in options.items())))
        with self._lock:
            engine = self._engines.get(key)
            if engine is None:
                engine = self._engines[key] = self._create(url, **options)
            return engine


class _SchemaCheckedOnce:
    """The ``jsonschema`` module as nbgrader's metadata validator uses it, with a validator per schema."""

    def __init__(self, module):
        self._module = module
        self._validators: dict[str, object] = {}

    def __getattr__(self, name):
        return getattr(self._module, name)

    def validate(self, instance, schema, *args, **kwargs):
        if args or kwargs:
            return self._module.validate(instance, schema, *args, **kwargs)
        key = json.dumps(schema, sort_keys=True)
        validator = self._validators.get(key)
        if validator is None:
            cls = self._module.validators.validator_for(schema)
            cls.check_schema(schema)
            validator = self._validators.setdefault(key, cls(schema))
        error = self._module.exceptions.best_match(validator.iter_errors(instance))
        if error is not None:
            raise error
