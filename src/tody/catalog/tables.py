"""Catalog schema (SQLAlchemy Core). Migrations in `migrations/versions` create exactly these tables.

Names here are the user's vocabulary; physical ClickHouse names are derived from ids
(`database` of a workspace, `id` of a data source), so renames never touch the engine.
"""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    Column,
    DateTime,
    Float,
    ForeignKey,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
)

metadata = MetaData()

organizations = Table(
    "organizations",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("name", String(128), nullable=False, unique=True),
    Column("created_at", DateTime, nullable=False),
)

workspaces = Table(
    "workspaces",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("organization_id", String(36), ForeignKey("organizations.id"), nullable=False),
    Column("name", String(128), nullable=False, unique=True),
    Column("database", String(64), nullable=False, unique=True),  # the ClickHouse database
    Column("created_at", DateTime, nullable=False),
    # Request rate limits set for this workspace: {"token_rps", "endpoint_rps", "endpoints": {pipe: rps}}.
    Column("limits", JSON, nullable=False, server_default="{}"),
)

users = Table(
    "users",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("email", String(320), nullable=False, unique=True),
    Column("password_hash", Text, nullable=False),  # scrypt, with its parameters and salt
    Column("created_at", DateTime, nullable=False),
)

organization_admins = Table(
    "organization_admins",
    metadata,
    Column(
        "organization_id", String(36), ForeignKey("organizations.id", ondelete="CASCADE"), primary_key=True
    ),
    Column("user_id", String(36), ForeignKey("users.id", ondelete="CASCADE"), primary_key=True),
)

# A user's role in a workspace: admin, guest or viewer. The member's personal token follows it.
members = Table(
    "members",
    metadata,
    Column("workspace_id", String(36), ForeignKey("workspaces.id", ondelete="CASCADE"), primary_key=True),
    Column("user_id", String(36), ForeignKey("users.id", ondelete="CASCADE"), primary_key=True),
    Column("role", String(16), nullable=False),
    Column("created_at", DateTime, nullable=False),
)

tokens = Table(
    "tokens",
    metadata,
    Column("id", String(64), primary_key=True),
    # A workspace token has a workspace; a user token (ADMIN_USER) only a user; a member's personal
    # workspace token both (its scopes come from the member's role).
    Column("workspace_id", String(36), ForeignKey("workspaces.id", ondelete="CASCADE"), nullable=True),
    Column("name", String(256), nullable=False),
    Column("description", Text, nullable=False, default=""),
    # Keyed hash of the value for lookup, and the value encrypted with the server key (DESIGN §8).
    Column("value_hash", String(64), nullable=False, unique=True),
    Column("value_encrypted", Text, nullable=False),
    Column("scopes", JSON, nullable=False),
    Column("origin", String(32), nullable=False, default=""),
    Column("created_at", DateTime, nullable=False),
    Column("updated_at", DateTime, nullable=False),
    Column("user_id", String(36), ForeignKey("users.id", ondelete="CASCADE"), nullable=True),
    UniqueConstraint("workspace_id", "name", name="uq_tokens_workspace_name"),
)

datasources = Table(
    "datasources",
    metadata,
    Column("id", String(64), primary_key=True),  # also the ClickHouse table name
    Column("workspace_id", String(36), ForeignKey("workspaces.id", ondelete="CASCADE"), nullable=False),
    Column("name", String(256), nullable=False),
    Column("description", Text, nullable=False, default=""),
    Column("columns", JSON, nullable=False),  # [{name, type, jsonpath, default, default_kind, codec}]
    Column("engine", JSON, nullable=False),  # TableEngine fields
    Column("indexes", JSON, nullable=False),
    Column("tags", JSON, nullable=False),
    Column("format", String(16), nullable=False, default="csv"),
    Column("created_at", DateTime, nullable=False),
    Column("updated_at", DateTime, nullable=False),
    UniqueConstraint("workspace_id", "name", name="uq_datasources_workspace_name"),
)

# A data source shared read-only from its workspace with another one (the destination).
shares = Table(
    "shares",
    metadata,
    Column("datasource_id", String(64), ForeignKey("datasources.id", ondelete="CASCADE"), primary_key=True),
    Column("workspace_id", String(36), ForeignKey("workspaces.id", ondelete="CASCADE"), primary_key=True),
    Column("created_at", DateTime, nullable=False),
)

pipes = Table(
    "pipes",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("workspace_id", String(36), ForeignKey("workspaces.id", ondelete="CASCADE"), nullable=False),
    Column("name", String(256), nullable=False),
    Column("description", Text, nullable=False, default=""),
    Column("endpoint_node_id", String(64), nullable=True),  # the published node
    Column("tags", JSON, nullable=False),
    Column("created_at", DateTime, nullable=False),
    Column("updated_at", DateTime, nullable=False),
    UniqueConstraint("workspace_id", "name", name="uq_pipes_workspace_name"),
)

nodes = Table(
    "nodes",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("pipe_id", String(64), ForeignKey("pipes.id", ondelete="CASCADE"), nullable=False),
    Column("position", Integer, nullable=False),
    Column("name", String(256), nullable=False),
    Column("sql", Text, nullable=False),
    Column("description", Text, nullable=False, default=""),
    Column("type", String(32), nullable=False, default="standard"),  # standard|endpoint|materialized|copy
    Column("options", JSON, nullable=False),  # datasource, target_datasource, copy_schedule, mode, engine_*
    Column("created_at", DateTime, nullable=False),
    Column("updated_at", DateTime, nullable=False),
    UniqueConstraint("pipe_id", "name", name="uq_nodes_pipe_name"),
)

jobs = Table(
    "jobs",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("workspace_id", String(36), ForeignKey("workspaces.id", ondelete="CASCADE"), nullable=False),
    Column("kind", String(32), nullable=False),  # import, delete_data, populateview, copy …
    Column("status", String(16), nullable=False),  # waiting, working, done, error, cancelled
    Column("datasource_id", String(64), nullable=True),
    Column("pipe_id", String(64), nullable=True),
    Column("progress", Float, nullable=False, default=0.0),
    Column("params", JSON, nullable=False),  # what was asked (url, mode, condition …)
    Column("result", JSON, nullable=False),  # statistics, rows, quarantine, block_log …
    Column("error", Text, nullable=True),
    Column("created_at", DateTime, nullable=False),
    Column("updated_at", DateTime, nullable=False),
    Column("started_at", DateTime, nullable=True),
)

# One row per scheduled copy pipe: where its schedule stands. Not a foreign key to pipes, because a
# pipe is saved by deleting and re-inserting its row; the copy service removes the row on drop.
copy_schedules = Table(
    "copy_schedules",
    metadata,
    Column("pipe_id", String(64), primary_key=True),
    Column("workspace_id", String(36), ForeignKey("workspaces.id", ondelete="CASCADE"), nullable=False),
    Column("cron", String(256), nullable=False),
    Column("status", String(16), nullable=False),  # running | paused
    Column("since", DateTime, nullable=False),  # firings count from here (schedule set or resumed)
    Column("last_run_at", DateTime, nullable=True),  # the scheduled time of the last firing
    Column("last_job_id", String(64), nullable=True),
    Column("updated_at", DateTime, nullable=False),
)
