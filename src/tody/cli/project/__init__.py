"""Projects as code: a folder of datafiles (Tinybird's layout) and its `.tinyb` config, and the commands
that work on it: init, auth, push, pull, check, fmt, diff.

Modules: `tinyb` (the project config file), `layout` (finding and reading the datafiles), `graph`
(what each resource reads, and the push order), `compare` (local vs server, unified diffs), then one
module per command. Nothing here imports the server or the services: the CLI speaks HTTP only, and
check/fmt work offline.
"""
