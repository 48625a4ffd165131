"""hash-chained audit and event logs: seq and hash on every row, chain heads, anchors, append-only on PostgreSQL

Every audit and event row gets `seq` (its place in its chain) and `hash` (SHA-256 of the previous
hash and the row's canonical encoding, core/chain.py); an application carries the heads of
its audit chain and its event chain, a track the head of its track-level events, `chain_head`
the head of the global chain (events of no application and no track). `audit_anchor` and
`audit_anchor_head` keep each anchor taken (`gongmo audit anchor`) and the heads it covered.

The rows already there are chained here, in order (per chain, by id), in chunks of BACKFILL
rows, by core/chain.py itself: the backfilled chains are the ones new writes would have made.

On PostgreSQL a trigger then refuses UPDATE, DELETE and TRUNCATE on audit and event.

Revision ID: 0010
Revises: 0009
"""

from __future__ import annotations

import os
from typing import Any, cast

import sqlalchemy as sa
from alembic import op

# The chain's definitions (core/chain.py) are the ones every writer uses, so the backfill makes
# exactly the chains new writes make.
from gongmo.workflow.core import chain

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None

BACKFILL = 5_000  # rows a chunk (GONGMO_BACKFILL_ROWS: tests make chunks tiny to cross their edges)
APPEND_ONLY = "gongmo_append_only"
TRIGGER_FUNCTION = f"""
CREATE FUNCTION {APPEND_ONLY}() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'gongmo: % on table "%" is refused: the audit and event logs are append-only (hash-chained);'
        ' a correction is a new row', TG_OP, TG_TABLE_NAME
        USING ERRCODE = 'insufficient_privilege';
END
$$
"""


def _heads(batch_op: Any, *prefixes: str) -> None:
    for prefix in prefixes:
        batch_op.add_column(sa.Column(f"{prefix}_seq", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column(f"{prefix}_hash", sa.String(length=64), nullable=True))


def upgrade() -> None:
    with op.batch_alter_table("application") as batch_op:
        _heads(batch_op, "audit", "event")
    with op.batch_alter_table("track") as batch_op:
        _heads(batch_op, "event")
    for table in ("audit", "event"):
        with op.batch_alter_table(table) as batch_op:
            batch_op.add_column(sa.Column("seq", sa.Integer(), nullable=True))
            batch_op.add_column(sa.Column("hash", sa.String(length=64), nullable=True))
    op.create_table(
        "chain_head",
        sa.Column("kind", sa.String(length=16), primary_key=True),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("hash", sa.String(length=64), nullable=True),
    )
    op.create_table(
        "audit_anchor",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("digest", sa.String(length=64), nullable=False, unique=True),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("rows", sa.BigInteger(), nullable=False),
        sa.Column("chains", sa.Integer(), nullable=False),
    )
    op.create_table(
        "audit_anchor_head",
        sa.Column("anchor_id", sa.Integer(), sa.ForeignKey("audit_anchor.id"), primary_key=True),
        sa.Column("kind", sa.String(length=16), primary_key=True),
        sa.Column("chain_id", sa.Integer(), primary_key=True, autoincrement=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("head", sa.String(length=64), nullable=False),
    )
    conn = op.get_bind()
    backfill(conn)
    if conn.dialect.name == "postgresql":
        op.execute(TRIGGER_FUNCTION)
        for table in ("audit", "event"):
            op.execute(
                f"CREATE TRIGGER {table}_append_only BEFORE UPDATE OR DELETE OR TRUNCATE ON {table}"
                f" FOR EACH STATEMENT EXECUTE FUNCTION {APPEND_ONLY}()"
            )


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        for table in ("audit", "event"):
            op.execute(f"DROP TRIGGER IF EXISTS {table}_append_only ON {table}")
        op.execute(f"DROP FUNCTION IF EXISTS {APPEND_ONLY}()")
    op.drop_table("audit_anchor_head")
    op.drop_table("audit_anchor")
    op.drop_table("chain_head")
    for table in ("event", "audit"):
        with op.batch_alter_table(table) as batch_op:
            batch_op.drop_column("hash")
            batch_op.drop_column("seq")
    with op.batch_alter_table("track") as batch_op:
        batch_op.drop_column("event_hash")
        batch_op.drop_column("event_seq")
    with op.batch_alter_table("application") as batch_op:
        for column in ("event_hash", "event_seq", "audit_hash", "audit_seq"):
            batch_op.drop_column(column)


# -- the backfill -------------------------------------------------------------------------------

_ROWS = {
    table: sa.table(table, sa.column("id"), sa.column("hash"), *(sa.column(c) for c in chain.COLUMNS[table]))
    for table in ("audit", "event")
}
_OWNERS = {
    "application": sa.table(
        "application",
        sa.column("id"),
        sa.column("audit_seq"),
        sa.column("audit_hash"),
        sa.column("event_seq"),
        sa.column("event_hash"),
    ),
    "track": sa.table("track", sa.column("id"), sa.column("event_seq"), sa.column("event_hash")),
}


def backfill(conn: sa.Connection) -> None:
    """Chain every audit and event row, each chain in id order, and set every head."""
    audit, event = _ROWS["audit"], _ROWS["event"]
    application, track = _OWNERS["application"], _OWNERS["track"]
    _chain(conn, "audit", chain.AUDIT, audit.c.application_id, None, application, "audit")
    _chain(
        conn, "event", chain.EVENT, event.c.application_id, event.c.application_id.is_not(None), application, "event"
    )
    only_track = sa.and_(event.c.application_id.is_(None), event.c.track_id.is_not(None))
    _chain(conn, "event", chain.TRACK, event.c.track_id, only_track, track, "event")
    neither = sa.and_(event.c.application_id.is_(None), event.c.track_id.is_(None))
    seq, head = _chain(conn, "event", chain.GLOBAL, None, neither, None, "event")
    conn.execute(sa.table("chain_head", sa.column("kind"), sa.column("seq"), sa.column("hash")).insert(),
                 [{"kind": chain.GLOBAL, "seq": seq, "hash": head}])  # fmt: skip


def _chain(
    conn: sa.Connection,
    table_name: str,
    kind: str,
    key: sa.ColumnElement[Any] | None,
    where: sa.ColumnElement[bool] | None,
    owner: sa.TableClause | None,
    prefix: str,
) -> tuple[int, str | None]:
    """Chain the rows of one kind; returns the last chain's (seq, head) (the global chain's)."""
    table = _ROWS[table_name]
    columns = chain.COLUMNS[table_name]
    dialect = conn.dialect.name
    chain_key = key if key is not None else sa.literal(chain.GLOBAL_ID)
    picked = [chain.at_text(table.c.at, dialect) if c == "at" else table.c[c] for c in columns if c != "seq"]
    query = sa.select(table.c.id, chain_key, *picked).order_by(*((key,) if key is not None else ()), table.c.id)
    if where is not None:
        query = query.where(where)
    rows_update = (
        sa.update(table)
        .where(table.c.id == sa.bindparam("r_id"))
        .values(seq=sa.bindparam("r_seq"), hash=sa.bindparam("r_hash"))
    )
    current: int | None = None
    seq, head = 0, cast(str | None, None)
    after: tuple[int, int] | None = None
    seq_at = columns.index("seq")
    while True:
        page = query
        if after is not None:
            page = page.where(
                sa.tuple_(key, table.c.id) > sa.tuple_(*after) if key is not None else table.c.id > after[1]
            )
        rows = conn.execute(page.limit(int(os.environ.get("GONGMO_BACKFILL_ROWS") or BACKFILL))).all()
        if not rows:
            break
        updates: list[dict[str, Any]] = []
        heads: list[dict[str, Any]] = []
        for row in rows:
            row_id, chain_id, values = int(row[0]), int(row[1]), list(row[2:])
            if chain_id != current:
                if current is not None:
                    heads.append({"o_id": current, "o_seq": seq, "o_hash": head})
                current, seq, head = chain_id, 0, None
            seq += 1
            values.insert(seq_at, seq)
            head = chain.link(chain.previous(kind, chain_id, head), chain.canonical_values(table_name, values)).hex()
            updates.append({"r_id": row_id, "r_seq": seq, "r_hash": head})
        conn.execute(rows_update, updates)
        if owner is not None and heads:
            _set_heads(conn, owner, prefix, heads)
        after = (int(rows[-1][1]), int(rows[-1][0]))
    if owner is not None and current is not None:
        _set_heads(conn, owner, prefix, [{"o_id": current, "o_seq": seq, "o_hash": head}])
    return seq, head


def _set_heads(conn: sa.Connection, owner: sa.TableClause, prefix: str, heads: list[dict[str, Any]]) -> None:
    conn.execute(
        sa.update(owner)
        .where(owner.c.id == sa.bindparam("o_id"))
        .values({f"{prefix}_seq": sa.bindparam("o_seq"), f"{prefix}_hash": sa.bindparam("o_hash")}),
        heads,
    )
