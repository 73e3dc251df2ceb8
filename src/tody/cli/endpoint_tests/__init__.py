"""Endpoint tests (`tody test`): the YAML files, running them, and rewriting their expectations."""
