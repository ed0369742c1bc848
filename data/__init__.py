"""Data stage: load a source, map it onto canonical columns, check it, split it, describe it."""
