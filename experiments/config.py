"""Run configurations: one YAML file describes a whole experiment (see docs/configs.md).

``load_config(path)`` parses the file with ``yaml.safe_load`` into a :class:`RunConfig` of typed
sections. Every problem is reported as a :class:`ConfigError` naming the key (``training.epochs``),
what was found and what would fix it; nothing runs until the whole file is valid.
"""

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from primitives.errors import SealionError

DATASETS = ("mnist", "fashion_mnist", "digits")
SCHEMES = ("bfv", "ckks")
SECURITY_LEVELS = (128, 192, 256)


class ConfigError(SealionError, ValueError):
    """A run configuration is malformed: the message names the key and the fix."""


@dataclass(frozen=True)
class DatasetConfig:
    """Which images to use. ``data_dir`` is searched first, then $SEALION_DATA, then the Keras
    cache; ``download`` lets Keras fetch the archive when none of them has it."""

    name: str = "mnist"
    data_dir: str | None = None
    download: bool = False
    train_samples: int | None = None  # first N training images (None: all)


@dataclass(frozen=True)
class ModelConfig:
    """The network: heras layers in order (each as in its ``get_config``), or a saved model."""

    name: str = "model"
    layers: tuple = ()
    load: str | None = None


@dataclass(frozen=True)
class TrainingConfig:
    """Keras training settings; ``optimizer`` is a name or ``{class_name, config}``."""

    epochs: int = 10
    batch_size: int = 128
    optimizer: object = None  # None: heras' default optimizer for polynomial networks
    learning_rate: float | None = None
    cosine_decay: bool = False
    validation_split: float = 0.0
    seed: int = 0
    verbose: int | None = None  # None: progress bars on a terminal, one line per epoch otherwise


@dataclass(frozen=True)
class EncryptionConfig:
    """How to encrypt: scheme, security, and ``parameters: auto`` or explicit parameter fields."""

    scheme: str = "bfv"
    security: int = 128
    parameters: object = "auto"
    input_bits: int = 8
    weight_bits: int = 8
    precision_bits: int = 20


@dataclass(frozen=True)
class EvaluationConfig:
    """How many test images to encrypt and how many go in one encrypted batch."""

    samples: int | None = 4096  # None: the whole test set
    batch_size: int | None = None  # None: the slot count (one full ciphertext batch)
    repeats: int = 1  # server forward passes per batch; latency_s is their median


@dataclass(frozen=True)
class OutputConfig:
    """Where results go; an existing run is never overwritten unless ``overwrite`` is true."""

    dir: str | None = None  # None: runs/<name>
    overwrite: bool = False


@dataclass(frozen=True)
class RunConfig:
    """A whole experiment; ``source`` is the file it came from (paths resolve against it)."""

    name: str
    dataset: DatasetConfig = field(default_factory=DatasetConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    training: TrainingConfig = field(default_factory=TrainingConfig)
    encryption: EncryptionConfig = field(default_factory=EncryptionConfig)
    evaluation: EvaluationConfig = field(default_factory=EvaluationConfig)
    output: OutputConfig = field(default_factory=OutputConfig)
    source: str | None = None
    kind: str = "inference"  # which experiment module runs it (experiments/kinds.py)
    extra: dict = field(default_factory=dict)  # the kind's own sections, by name

    def section(self, name):
        """The kind-specific section ``name`` (a dataclass; its defaults when absent)."""
        if name not in self.extra:
            raise KeyError(f"Run kind {self.kind!r} has no config section {name!r}; it has "
                           f"{sorted(self.extra) or 'none'}.")
        return self.extra[name]

    def output_dir(self):
        return Path(self.output.dir) if self.output.dir else Path("runs") / self.name

    def to_dict(self):
        """Plain data (for results.json): the configuration as it was run."""
        return dataclasses.asdict(self)


SECTIONS = {"dataset": DatasetConfig, "model": ModelConfig, "training": TrainingConfig,
            "encryption": EncryptionConfig, "evaluation": EvaluationConfig, "output": OutputConfig}


def load_config(path, overrides=()):
    """Read the YAML run configuration at ``path``.

    Args:
        path: a .yaml file.
        overrides: "section.key=value" strings applied before validation (values parsed as
            YAML), e.g. ``("training.epochs=1", "evaluation.samples=256")``.

    Raises:
        ConfigError: unreadable file, invalid YAML, unknown keys, wrong types or values.
    """
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"Config file {str(path)!r} does not exist. Pass the path of a YAML run "
                          "configuration, e.g. configs/quickstart.yaml.")
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as err:
        raise ConfigError(f"{path} is not valid YAML: {err}") from err
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: expected a mapping of sections at the top level "
                          f"({', '.join(SECTIONS)}). Found a {type(raw).__name__}.")
    for override in overrides:
        apply_override(raw, override)
    return parse_config(raw, source=str(path), default_name=path.stem)


def apply_override(raw, override):
    """Set ``section.key`` in the raw mapping from a "section.key=value" string."""
    key, sep, text = override.partition("=")
    parts = key.strip().split(".")
    if not sep or len(parts) != 2 or not all(parts):
        raise ConfigError(f"Override {override!r} must look like section.key=value, e.g. training.epochs=1.")
    try:
        value = yaml.safe_load(text)
    except yaml.YAMLError as err:
        raise ConfigError(f"Override {override!r}: the value is not valid YAML: {err}") from err
    section = raw.setdefault(parts[0], {})
    if not isinstance(section, dict):
        raise ConfigError(f"Override {override!r}: {parts[0]} is not a section in the config.")
    section[parts[1]] = value


def parse_config(raw, source=None, default_name="run"):
    """Validate a raw mapping (as from ``yaml.safe_load``) into a :class:`RunConfig`."""
    from .kinds import DEFAULT_KIND, get_kind
    kind = get_kind(raw.get("kind", DEFAULT_KIND))
    extra_classes = kind.section_classes()
    known = set(SECTIONS) | set(extra_classes) | {"name", "kind"}
    _reject_unknown(raw, known, f"the top level (kind {kind.name!r})")
    name = raw.get("name", default_name)
    if not isinstance(name, str) or not name.strip():
        raise ConfigError(f"name: expected a non-empty string. Found {name!r}.")
    sections = {key: _section(key, cls, raw.get(key)) for key, cls in SECTIONS.items()}
    extra = {key: _section(key, cls, raw.get(key)) for key, cls in extra_classes.items()}
    config = RunConfig(name=name, source=source, kind=kind.name, extra=extra, **sections)
    _check_values(config, Path(source).parent if source else Path("."), kind.needs_layers)
    return config


def _reject_unknown(mapping, known, where):
    unknown = sorted(set(mapping) - set(known))
    if unknown:
        raise ConfigError(f"Unknown key(s) {unknown} in {where}; valid keys are {sorted(known)}. "
                          "Check the spelling (see docs/configs.md).")


def _section(name, cls, raw):
    if raw is None:
        return cls()
    if not isinstance(raw, dict):
        raise ConfigError(f"{name}: expected a mapping of keys. Found {type(raw).__name__} {raw!r}.")
    fields = {f.name: f for f in dataclasses.fields(cls)}
    _reject_unknown(raw, fields, f"section {name!r}")
    values = {key: _typed(f"{name}.{key}", value, fields[key].type) for key, value in raw.items()}
    if name == "model" and "layers" in values:
        values["layers"] = tuple(values["layers"])
    return cls(**values)


_TYPE_NAMES = {"int": "an integer", "float": "a number", "bool": "true or false", "str": "a string"}


def _typed(key, value, annotation):
    """Check ``value`` against a field annotation such as ``int | None`` (given as a string)."""
    annotation = annotation.__name__ if isinstance(annotation, type) else str(annotation)
    options = [part.strip() for part in annotation.split("|")]
    if value is None:
        if "None" in options or annotation == "object":
            return None
        raise ConfigError(f"{key}: a value is required ({_TYPE_NAMES.get(options[0], options[0])}).")
    if annotation == "object":
        return value
    if annotation == "tuple":
        if not isinstance(value, list):
            raise ConfigError(f"{key}: expected a list. Found {type(value).__name__} {value!r}.")
        return value
    for option in options:
        if option == "bool" and isinstance(value, bool):
            return value
        if option == "int" and isinstance(value, int) and not isinstance(value, bool):
            return value
        if option == "float" and isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        if option == "str" and isinstance(value, str):
            return value
    wanted = " or ".join(_TYPE_NAMES.get(o, o) for o in options if o != "None")
    raise ConfigError(f"{key}: expected {wanted}. Found {type(value).__name__} {value!r}.")


def _check_values(config, base, needs_layers=True):
    """Value checks that need more than a type: choices, ranges, files."""
    d, t, e, v = config.dataset, config.training, config.encryption, config.evaluation
    _choice("dataset.name", d.name, DATASETS)
    _choice("encryption.scheme", e.scheme, SCHEMES)
    _choice("encryption.security", e.security, SECURITY_LEVELS)
    for key, value, low in (("training.epochs", t.epochs, 0), ("training.batch_size", t.batch_size, 1),
                            ("encryption.input_bits", e.input_bits, 1), ("encryption.weight_bits", e.weight_bits, 2),
                            ("encryption.precision_bits", e.precision_bits, 1),
                            ("evaluation.samples", v.samples, 1), ("evaluation.batch_size", v.batch_size, 1),
                            ("evaluation.repeats", v.repeats, 1),
                            ("dataset.train_samples", d.train_samples, 1)):
        if value is not None and value < low:
            raise ConfigError(f"{key}: expected an integer >= {low}. Found {value}.")
    if t.verbose not in (None, 0, 1, 2):
        raise ConfigError(f"training.verbose: expected 0, 1 or 2 (Keras verbosity). Found {t.verbose}.")
    if not 0.0 <= t.validation_split < 1.0:
        raise ConfigError(f"training.validation_split: expected a fraction in [0, 1). Found {t.validation_split}.")
    if e.input_bits > 24 or e.weight_bits > 24:
        raise ConfigError("encryption.input_bits / weight_bits: at most 24 bits each; 8 keeps MNIST "
                          "accuracy and small plaintext moduli.")
    if d.data_dir is not None and not (base / d.data_dir).expanduser().is_dir():
        raise ConfigError(f"dataset.data_dir: folder {d.data_dir!r} does not exist (relative paths are "
                          f"read from {str(base)!r}). Point it at the folder holding {d.name}.npz, or "
                          "remove the key to use $SEALION_DATA.")
    if config.model.load is not None:
        if config.model.layers:
            raise ConfigError("model: give either `layers` (train a new model) or `load` (a saved "
                              "model), not both.")
        if not (base / config.model.load).expanduser().is_file():
            raise ConfigError(f"model.load: file {config.model.load!r} does not exist (relative paths "
                              f"are read from {str(base)!r}).")
    elif needs_layers and not config.model.layers:
        raise ConfigError("model.layers: list the layers to train (e.g. [Flatten, {Dense: {units: 30}}, "
                          "Square, {Dense: {units: 10}}]) or set model.load to a saved model.")
    if not (isinstance(e.parameters, dict) or e.parameters == "auto"):
        raise ConfigError(f"encryption.parameters: expected `auto` or a mapping of parameter fields "
                          f"(poly_modulus_degree, coeff_mod_bit_sizes, plain_moduli, ...). Found {e.parameters!r}.")


def _choice(key, value, choices):
    if value not in choices:
        raise ConfigError(f"{key}: expected one of {list(choices)}. Found {value!r}.")


def resolve(config, relative):
    """Path ``relative`` as written in ``config``'s file: relative paths start at its folder."""
    base = Path(config.source).parent if config.source else Path(".")
    return (base / relative).expanduser()
