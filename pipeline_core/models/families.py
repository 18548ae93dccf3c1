"""Model family names and whether each reads sequences, without importing any model library.

Configs are checked against this table; a family's library (xgboost, torch, ...) is
imported only when a model of it is created or loaded (`registry`). A test keeps the table
equal to the registered classes.
"""

SEQUENCE_FAMILIES = {
    "xgboost": False,
    "lightgbm": False,
    "catboost": False,
    "lstm": True,
    "gru": True,
    "tcn": True,
}
