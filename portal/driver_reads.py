"""The pages' hottest read statements, run straight on the driver's cursor.

SQLAlchemy compiles such a statement once per dialect and its column types still convert what
goes in and what comes out, but no execution context, result object or ORM session step is
built on each run, and those cost more than many of the queries themselves: a feed page's
fifty messages took 0.30 ms through the session and take 0.19 ms here (the driver's own
execute and fetch: 0.08 ms). The statement runs on the session's connection, inside its
transaction, and statement listeners (the query counts of the tests and benchmarks, the note
of writes) see it as any other. A driver error is raised as SQLAlchemy raises it; a lost
connection is invalidated, so that the error pages answer 503 and the next request connects
afresh.

Only SELECTs whose values are all named: no IN list that expands on each run.
"""

from collections import namedtuple
from collections.abc import Callable, Mapping
from itertools import starmap
from threading import Lock

from sqlalchemy import Connection, Select, exc

from portal.extensions import db


class DriverRead:
    """A SELECT built once at import, run with `rows(values)` for a list of named tuples."""

    def __init__(self, statement: Select):
        self.statement = statement
        self._plans: dict[tuple[str, str], _Plan] = {}
        self._lock = Lock()

    def rows(self, values: Mapping) -> list:
        session = db.session()
        if session.autoflush:  # what the session holds unwritten is read, as by its execute
            session.flush()
        connection = session.connection()
        return self.plan(connection.dialect).run(connection, values)

    def plan(self, dialect) -> "_Plan":
        """The statement as this dialect's driver takes it (compiled on first use)."""
        key = (dialect.name, dialect.driver)  # drivers differ in how values are passed
        plan = self._plans.get(key)
        if plan is None:
            with self._lock:
                plan = self._plans.setdefault(key, _Plan(self.statement, dialect))
        return plan


class _Plan:
    """The statement as one dialect's driver takes it, and the conversions of its values."""

    def __init__(self, statement: Select, dialect):
        compiled = statement.compile(dialect=dialect)
        binds = compiled.binds
        if any(bind.expanding for bind in binds.values()):
            raise ValueError("an IN list that expands per run cannot be run by the driver")
        required = {name for name, bind in binds.items() if bind.required}
        if compiled.literal_execute_params:
            # Values fixed when the statement was built (literal_execute) are written into the
            # SQL once, here; SQLAlchemy asks a value of every parameter to do so.
            compiled = statement.params(dict.fromkeys(required)).compile(
                dialect=dialect, compile_kwargs={"render_postcompile": True})
        self.sql = compiled.string
        self.positional = compiled.positional
        self.names = list(compiled.positiontup) if compiled.positional else list(compiled.binds)
        # Named values as the SQL names them (SQLAlchemy escapes names the driver cannot take).
        self.keys = [compiled.escaped_bind_names.get(name, name) for name in self.names]
        # A value the statement holds itself (a LIMIT, a literal) unless one is given.
        self.binds = [
            (name, name in required, binds[name].value, _bind_converter(binds[name].type, dialect))
            for name in self.names
        ]
        columns = list(statement.selected_columns)
        self.converters = [
            (index, converter) for index, column in enumerate(columns)
            if (converter := column.type.dialect_impl(dialect).result_processor(dialect, None))
        ]
        self.row_type = namedtuple("Row", statement.selected_columns.keys(), rename=True)

    def run(self, connection: Connection, values: Mapping) -> list:
        parameters = self.parameters(values)
        cursor = connection.connection.dbapi_connection.cursor()
        try:
            connection.dispatch.before_cursor_execute(
                connection, cursor, self.sql, parameters, None, False)
            cursor.execute(self.sql, parameters)
            fetched = cursor.fetchall()
            connection.dispatch.after_cursor_execute(
                connection, cursor, self.sql, parameters, None, False)
        except connection.dialect.loaded_dbapi.Error as error:
            raise _wrapped(connection, error, self.sql, parameters, cursor) from error
        finally:
            cursor.close()
        return self._rows(fetched)

    def parameters(self, values: Mapping):
        """The values as the driver takes them: converted by their types, in its style."""
        converted = []
        for name, required, default, convert in self.binds:
            value = values[name] if required else values.get(name, default)
            converted.append(value if convert is None else convert(value))
        if self.positional:
            return tuple(converted)
        return dict(zip(self.keys, converted, strict=True))

    def _rows(self, fetched: list) -> list:
        if not fetched:
            return []
        if not self.converters:
            return list(starmap(self.row_type, fetched))
        # Column by column: one map per converted column, rather than a loop per value.
        columns = list(zip(*fetched, strict=True))
        for index, convert in self.converters:
            columns[index] = [None if value is None else convert(value)
                              for value in columns[index]]
        return list(starmap(self.row_type, zip(*columns, strict=True)))


def _bind_converter(type_, dialect) -> Callable | None:
    return type_.dialect_impl(dialect).bind_processor(dialect)


def _wrapped(connection: Connection, error, sql: str, parameters, cursor) -> exc.DBAPIError:
    """The driver's error as SQLAlchemy raises it; a connection the server dropped is
    invalidated (the error pages answer 503 for it, and the pool drops it)."""
    dialect = connection.dialect
    lost = dialect.is_disconnect(error, connection.connection.dbapi_connection, cursor)
    if lost:
        connection.invalidate(error)
    return exc.DBAPIError.instance(sql, parameters, error, dialect.loaded_dbapi.Error,
                                   connection_invalidated=lost, dialect=dialect)
