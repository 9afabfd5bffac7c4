"""Experiments: whole runs described by one YAML file (``sealion run CONFIG.yaml``).

config.py parses and validates the file; data.py and building.py load the dataset and build
and train the heras model; runner.py prepares, encrypts, runs and decrypts; results.py writes
results.json / results.md and the tables. See docs/configs.md for the schema.
"""

from .config import ConfigError, RunConfig, load_config, parse_config
from .runner import run

__all__ = ["ConfigError", "RunConfig", "load_config", "parse_config", "run"]
