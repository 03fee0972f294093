"""messages' references checked once a statement on PostgreSQL

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-02

A message refers to its account (``user_id``) and its provider (``provider_id``). As foreign
keys, PostgreSQL checked both for every row: a query of each referenced table, with a lock on
the row it found. A batch's 100 rows all name the same account and provider, and the checks
were a quarter of PostgreSQL's work for them.

Here triggers keep the same promises, checking a statement's rows together: an INSERT's new
rows (a transition table: one ``COPY`` of a batch) lock the rows they refer to, as a foreign
key's check does (``FOR KEY SHARE``: no one deletes them until this transaction ends), and a
reference to a row that is not there fails the statement with PostgreSQL's own error for it
(``foreign_key_violation``, the constraint named as before). An UPDATE that changes a
reference is checked row by row; no other UPDATE pays anything. Deleting an account deletes
its messages, deleting a provider leaves its messages without one (``ON DELETE CASCADE`` and
``SET NULL``), and a referenced id cannot change.

Measured here, PostgreSQL's CPU a row: 100-row ``COPY``s 41 us with the foreign keys, 31 us
with these triggers; one-row INSERTs (``/send``) 59 us and 64 us. SQLite keeps its foreign
keys: it checks them in its own C code, for a fraction of a row's cost.
"""

from __future__ import annotations

from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

# (column of messages, table it refers to, what deleting that table's row does to messages)
REFERENCES = (("user_id", "users", "CASCADE"), ("provider_id", "providers", "SET NULL"))

# The check of one reference in messages_check_new_references, where first_<column> and
# last_<column> are the least and the greatest of the new rows' values.
CHECK_NEW_REFERENCE = """\
    IF first_{column} = last_{column} THEN
        PERFORM FROM {table} WHERE id = first_{column} FOR KEY SHARE;
        IF NOT FOUND THEN
            PERFORM messages_reference_missing('{column}', '{table}', first_{column});
        END IF;
    ELSIF first_{column} IS NOT NULL THEN
        PERFORM FROM {table} WHERE id IN (SELECT {column} FROM new_messages) FOR KEY SHARE;
        SELECT {column} INTO missing FROM new_messages AS m
            WHERE m.{column} IS NOT NULL
            AND NOT EXISTS (SELECT FROM {table} WHERE {table}.id = m.{column}) LIMIT 1;
        IF FOUND THEN
            PERFORM messages_reference_missing('{column}', '{table}', missing);
        END IF;
    END IF;
"""
CHECK_NEW_REFERENCES = "".join(
    CHECK_NEW_REFERENCE.format(column=column, table=table) for column, table, _ in REFERENCES
)

# Statements apart by a blank line: the driver prepares each, and a prepared statement is one.
CREATE = f"""
CREATE FUNCTION messages_reference_missing(col text, tab text, missing integer)
RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    RAISE foreign_key_violation USING
        MESSAGE = format(
            'insert or update on table "messages" violates foreign key constraint "%s"',
            'fk_messages_' || col || '_' || tab),
        DETAIL = format('Key (%s)=(%s) is not present in table "%s".', col, missing, tab),
        CONSTRAINT = 'fk_messages_' || col || '_' || tab,
        TABLE = 'messages',
        COLUMN = col;
END $$;

-- A statement's rows nearly always name one account and one provider (a batch, or one
-- message): then each is locked and checked as a foreign key would, by one lookup whose plan
-- is kept. Only the first query reads the new rows (a query of them is planned at each call).
CREATE FUNCTION messages_check_new_references() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    first_user_id integer;
    last_user_id integer;
    first_provider_id integer;
    last_provider_id integer;
    missing integer;
BEGIN
    SELECT min(user_id), max(user_id), min(provider_id), max(provider_id)
        INTO first_user_id, last_user_id, first_provider_id, last_provider_id
        FROM new_messages;
{CHECK_NEW_REFERENCES}    RETURN NULL;
END $$;

CREATE TRIGGER check_new_references AFTER INSERT ON messages
    REFERENCING NEW TABLE AS new_messages
    FOR EACH STATEMENT EXECUTE FUNCTION messages_check_new_references();

CREATE FUNCTION messages_check_changed_references() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.user_id IS DISTINCT FROM OLD.user_id THEN
        PERFORM FROM users WHERE id = NEW.user_id FOR KEY SHARE;
        IF NOT FOUND THEN
            PERFORM messages_reference_missing('user_id', 'users', NEW.user_id);
        END IF;
    END IF;
    IF NEW.provider_id IS DISTINCT FROM OLD.provider_id AND NEW.provider_id IS NOT NULL THEN
        PERFORM FROM providers WHERE id = NEW.provider_id FOR KEY SHARE;
        IF NOT FOUND THEN
            PERFORM messages_reference_missing('provider_id', 'providers', NEW.provider_id);
        END IF;
    END IF;
    RETURN NULL;
END $$;

CREATE TRIGGER check_changed_references AFTER UPDATE OF user_id, provider_id ON messages
    FOR EACH ROW
    WHEN (NEW.user_id IS DISTINCT FROM OLD.user_id
        OR NEW.provider_id IS DISTINCT FROM OLD.provider_id)
    EXECUTE FUNCTION messages_check_changed_references();

CREATE FUNCTION users_delete_messages() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    DELETE FROM messages WHERE user_id = OLD.id;
    RETURN NULL;
END $$;

CREATE TRIGGER delete_messages AFTER DELETE ON users
    FOR EACH ROW EXECUTE FUNCTION users_delete_messages();

CREATE FUNCTION providers_unlink_messages() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE messages SET provider_id = NULL WHERE provider_id = OLD.id;
    RETURN NULL;
END $$;

CREATE TRIGGER unlink_messages AFTER DELETE ON providers
    FOR EACH ROW EXECUTE FUNCTION providers_unlink_messages();

-- TG_ARGV[0]: the column of messages that refers to the table's id.
CREATE FUNCTION messages_keep_referenced_id() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    referenced boolean;
BEGIN
    EXECUTE format('SELECT EXISTS (SELECT FROM messages WHERE %I = $1)', TG_ARGV[0])
        INTO referenced USING OLD.id;
    IF referenced THEN
        RAISE foreign_key_violation USING
            MESSAGE = format(
                'update on table "%s" violates foreign key constraint "%s" on table "messages"',
                TG_TABLE_NAME, 'fk_messages_' || TG_ARGV[0] || '_' || TG_TABLE_NAME),
            DETAIL = format(
                'Key (id)=(%s) is still referenced from table "messages".', OLD.id),
            TABLE = TG_TABLE_NAME;
    END IF;
    RETURN NULL;
END $$;

CREATE TRIGGER keep_messages_user_id AFTER UPDATE OF id ON users
    FOR EACH ROW WHEN (NEW.id IS DISTINCT FROM OLD.id)
    EXECUTE FUNCTION messages_keep_referenced_id('user_id');

CREATE TRIGGER keep_messages_provider_id AFTER UPDATE OF id ON providers
    FOR EACH ROW WHEN (NEW.id IS DISTINCT FROM OLD.id)
    EXECUTE FUNCTION messages_keep_referenced_id('provider_id');
"""  # noqa: S608 (the only values put in are the names in REFERENCES)

DROP = """
DROP TRIGGER keep_messages_provider_id ON providers;
DROP TRIGGER keep_messages_user_id ON users;
DROP FUNCTION messages_keep_referenced_id();
DROP TRIGGER unlink_messages ON providers;
DROP FUNCTION providers_unlink_messages();
DROP TRIGGER delete_messages ON users;
DROP FUNCTION users_delete_messages();
DROP TRIGGER check_changed_references ON messages;
DROP FUNCTION messages_check_changed_references();
DROP TRIGGER check_new_references ON messages;
DROP FUNCTION messages_check_new_references();
DROP FUNCTION messages_reference_missing(text, text, integer);
"""


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    for column, table, _ in REFERENCES:
        op.drop_constraint(f"fk_messages_{column}_{table}", "messages", type_="foreignkey")
    for statement in CREATE.strip().split("\n\n"):
        op.execute(statement)


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    for statement in DROP.strip().splitlines():
        op.execute(statement)
    for column, table, on_delete in REFERENCES:
        op.create_foreign_key(
            f"fk_messages_{column}_{table}",
            "messages",
            table,
            [column],
            ["id"],
            ondelete=on_delete,
        )
