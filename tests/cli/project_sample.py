"""A sample project in Tinybird's layout for the project tests: three data sources (one with jsonpaths
and TOKEN lines, an AggregatingMergeTree target, a copy target), an endpoint pipe with template params
and a TOKEN, a pipe that reads that pipe, a materialized pipe, a copy pipe, and fixtures."""

from __future__ import annotations

from pathlib import Path

FILES = {
    "datasources/events.datasource": """DESCRIPTION >
    Raw events

SCHEMA >
    `timestamp` DateTime `json:$.timestamp`,
    `event` LowCardinality(String) `json:$.event`,
    `user_id` String `json:$.user_id`,
    `amount` Float64 `json:$.amount`

ENGINE "MergeTree"
ENGINE_PARTITION_KEY "toYYYYMM(timestamp)"
ENGINE_SORTING_KEY "event, timestamp"

TOKEN app_read READ
TOKEN ingest APPEND
""",
    "datasources/events_by_day.datasource": """SCHEMA >
    `day` Date,
    `event` LowCardinality(String),
    `total` AggregateFunction(count),
    `amount_sum` AggregateFunction(sum, Float64)

ENGINE "AggregatingMergeTree"
ENGINE_SORTING_KEY "day, event"
""",
    "datasources/snapshot.datasource": """SCHEMA >
    `event` String,
    `c` UInt64

ENGINE "MergeTree"
ENGINE_SORTING_KEY "event"
""",
    "endpoints/top_users.pipe": """DESCRIPTION >
    Top users for one event

TOKEN "dashboard" READ

NODE filtered
SQL >
    %
    SELECT user_id, amount FROM events
    WHERE event = {{String(event, 'click')}}

NODE endpoint
SQL >
    %
    SELECT user_id, count() AS hits, sum(amount) AS total
    FROM filtered
    GROUP BY user_id
    ORDER BY hits DESC, user_id
    LIMIT {{Int32(limit, 10)}}

TYPE endpoint
""",
    # reads another pipe, and sorts before it: the push order must put it after top_users
    "pipes/a_summary.pipe": """NODE summary
SQL >
    SELECT count() AS users FROM top_users
""",
    "materializations/events_by_day_mv.pipe": """NODE aggregate
SQL >
    SELECT toDate(timestamp) AS day, event, countState() AS total, sumState(amount) AS amount_sum
    FROM events
    GROUP BY day, event

TYPE materialized
DATASOURCE events_by_day
""",
    "copies/snapshot_copy.pipe": """NODE counts
SQL >
    SELECT event, count() AS c FROM events GROUP BY event

TYPE copy
TARGET_DATASOURCE snapshot
COPY_MODE replace
""",
    "fixtures/events.csv": """2024-01-01 10:00:00,click,u1,1.5
2024-01-01 11:00:00,click,u2,2.5
2024-01-02 09:30:00,view,u1,0
""",
    "fixtures/events.ndjson": '{"timestamp":"2024-01-03 10:00:00","event":"click","user_id":"u1","amount":3}\n',
}


def write_project(root: Path) -> Path:
    for name, text in FILES.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return root
