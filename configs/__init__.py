"""Typed configuration shared by all stages: schema, YAML loading with overrides, run folders."""
