"""Extension objects, unbound; create_app binds them."""

from contextlib import suppress

from flask_login import LoginManager
from flask_mail import Mail
from flask_migrate import Migrate
from flask_sqlalchemy import SQLAlchemy
from flask_wtf.csrf import CSRFProtect
from htmx_flask import Htmx
from psycopg.pq import TransactionStatus
from sqlalchemy import Engine, MetaData, event, text
from sqlalchemy.orm import DeclarativeBase

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


# A session lives for one request: nothing is gained by reloading every object after a commit
# (a page that posts, then renders, would read the user, client and message again).
db = SQLAlchemy(model_class=Base, session_options={"expire_on_commit": False})
migrate = Migrate(render_as_batch=True)
login_manager = LoginManager()
csrf = CSRFProtect()
mail = Mail()
htmx = Htmx()


# psycopg forgets its prepared statements at every ROLLBACK (it cannot tell what a rolled-back
# transaction changed), and every request's session ends with one: PostgreSQL parsed and
# planned every statement of every request afresh (planning the poll's took four times as long
# as running it). A transaction that only read is ended with COMMIT instead, the same to the
# server, and the statements stay prepared on the connection from one request to the next.
_WROTE = "portal.wrote"


@event.listens_for(Engine, "begin")
def _forget_writes(connection) -> None:
    connection.info.pop(_WROTE, None)


@event.listens_for(Engine, "before_cursor_execute")
def _note_writes(connection, cursor, statement, *_) -> None:
    # Anything but a plain SELECT counts as a write (SAVEPOINT and BEGIN too).
    if connection is not None and not statement.startswith("SELECT"):
        connection.info[_WROTE] = True


@event.listens_for(Engine, "rollback")
def _commit_what_only_read(connection) -> None:
    if (connection.invalidated or connection.closed  # (before .info: it would raise)
            or connection.dialect.driver != "psycopg" or connection.info.get(_WROTE)):
        return
    driver_connection = connection.connection.dbapi_connection
    if driver_connection.info.transaction_status != TransactionStatus.INTRANS:
        return  # idle, or failed: a failed transaction is rolled back as usual
    # Should it fail, the ROLLBACK that follows meets the same error, through SQLAlchemy.
    with suppress(connection.dialect.loaded_dbapi.Error):
        driver_connection.commit()


# PostgreSQL plans the portal's prepared statements once, for any values (plan_cache_mode,
# portal/__init__.py). A search's best plan depends on its words: a common one is found by
# walking the newest first and stopping at a page, a rare one by its few matching names. One
# plan for both took 138 ms for "son" on 5,000 clients, where its own plan took 2 ms.
_PLAN_FOR_VALUES = text("SELECT set_config('plan_cache_mode', 'force_custom_plan', true)")


def plan_for_values() -> None:
    """The rest of this transaction's statements are planned for the values they run with.
    (A SELECT rather than SET LOCAL: the transaction still only reads, see above.)"""
    if db.session.get_bind().dialect.name == "postgresql":
        db.session.execute(_PLAN_FOR_VALUES)
