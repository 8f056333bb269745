"""The hash chains become RFC 6962 Merkle trees with C2SP signed-note checkpoints.

Existing entries keep their canonical bytes (and so their content); their leaves are recomputed as
SHA-256(0x00 || canonical), the tree's nodes and right edge are built from them, and the old
chain checkpoints (JSON signatures over chain heads, meaningless for a tree) are dropped: the
service signs a checkpoint of each workspace's tree on its next timed round.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-21
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from reprolab_common.merkle import CompactRange, leaf_hash

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("entries") as batch:
        batch.drop_column("prev_hash")
        batch.drop_column("hash")
    with op.batch_alter_table("heads") as batch:
        batch.drop_column("hash")
        batch.add_column(sa.Column("tree", sa.Text(), nullable=False, server_default=""))
    with op.batch_alter_table("signing_keys") as batch:
        batch.add_column(sa.Column("retired_at", sa.DateTime(timezone=True), nullable=True))
    op.drop_index("ix_checkpoints_workspace_size", table_name="checkpoints")
    op.drop_table("checkpoints")
    op.create_table(
        "checkpoints",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("workspace", sa.String(128), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("root", sa.String(64), nullable=False),
        sa.Column("key_id", sa.String(16), nullable=False),
        sa.Column("note", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_checkpoints_workspace_size", "checkpoints", ["workspace", "size"])
    op.create_table(
        "tree_nodes",
        sa.Column("workspace", sa.String(128), nullable=False),
        sa.Column("level", sa.Integer(), nullable=False),
        sa.Column("idx", sa.BigInteger(), nullable=False),
        sa.Column("hash", sa.String(64), nullable=False),
        sa.PrimaryKeyConstraint("workspace", "level", "idx", name="pk_tree_nodes"),
    )
    _rebuild_trees()


def _rebuild_trees() -> None:
    conn = op.get_bind()
    entries = sa.table("entries", sa.column("id"), sa.column("workspace"), sa.column("seq"),
                       sa.column("canonical"), sa.column("leaf"))
    heads = sa.table("heads", sa.column("workspace"), sa.column("size"), sa.column("tree"),
                     sa.column("checkpoint_size"))
    nodes = sa.table("tree_nodes", sa.column("workspace"), sa.column("level"), sa.column("idx"), sa.column("hash"))
    workspaces = [w for (w,) in conn.execute(sa.select(heads.c.workspace))]
    for workspace in workspaces:
        tree = CompactRange()
        completed: list[tuple[int, int, bytes]] = []
        rows = conn.execute(sa.select(entries.c.id, entries.c.canonical).where(entries.c.workspace == workspace)
                            .order_by(entries.c.seq)).all()
        for entry_id, canonical in rows:
            leaf = leaf_hash(canonical.encode())
            conn.execute(sa.update(entries).where(entries.c.id == entry_id).values(leaf=leaf.hex()))
            tree.append(leaf, lambda level, idx, h: completed.append((level, idx, h)))  # noqa: B023 - called at once
        new_nodes = [{"workspace": workspace, "level": level, "idx": idx, "hash": h.hex()}
                     for level, idx, h in completed if level]
        if new_nodes:
            conn.execute(sa.insert(nodes), new_nodes)
        conn.execute(sa.update(heads).where(heads.c.workspace == workspace).values(
            size=tree.size, tree="".join(h.hex() for h in tree.hashes), checkpoint_size=0))


def downgrade() -> None:
    raise NotImplementedError("the hash chain cannot be restored from the Merkle log")
