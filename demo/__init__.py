"""The embedded demo (`make demo`, `make demo-drift`): it drives the code location from a
script, outside the package that Dagster loads."""
