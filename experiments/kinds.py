"""Experiment kinds: the top-level ``kind:`` key of a run config names the module that runs it.

Each kind is a small module of its own with ``run(config, output=None, overwrite=None,
log=print, verbose=None) -> dict`` (writes results.json / results.md, returns the results) and
``summary(results) -> (text, exit_code)`` (what ``sealion run`` prints and returns). A kind may
add sections of its own to the config: plain dataclasses, declared here so that reading a config
stays light (no TensorFlow import) and unknown keys are refused as in every other section.

To add a kind: write its module, add a :class:`Kind` to :data:`KINDS`, document its sections
in docs/configs.md.
"""

import importlib
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Kind:
    """One kind of experiment.

    Attributes:
        name: the value of ``kind:`` in a config.
        module: dotted path of the module with ``run`` and ``summary``.
        description: one line for error messages and ``--help``.
        sections: extra config sections, ``{name: "module:DataclassName"}`` (imported on demand).
        needs_layers: whether ``model.layers`` (or ``model.load``) must be given.
        takes_executor: whether ``run`` accepts ``executor=`` (``sealion run --executor``).
    """

    name: str
    module: str
    description: str
    sections: dict = field(default_factory=dict)
    needs_layers: bool = True
    takes_executor: bool = False

    def runner(self):
        """The module that runs this kind (imported on first use: it may import TensorFlow)."""
        return importlib.import_module(self.module)

    def section_classes(self):
        """``{section name: dataclass}`` of this kind's own config sections."""
        classes = {}
        for name, path in self.sections.items():
            module, _, cls = path.partition(":")
            classes[name] = getattr(importlib.import_module(module), cls)
        return classes


#: Every kind ``sealion run`` knows, by the name a config gives in ``kind:``.
KINDS = {kind.name: kind for kind in (
    Kind("inference", "experiments.runner",
         "train (or load) a model, prepare it, run the test set encrypted and compare",
         takes_executor=True),
    Kind("transfer_learning", "applications.transfer_learning.experiment",
         "train a VAE on unlabelled images, encode a client's few labelled images encrypted, "
         "classify the decrypted latents vs the pixels",
         sections={"vae": "applications.transfer_learning.config:VAEConfig",
                   "transfer": "applications.transfer_learning.config:TransferConfig"}),
)}

DEFAULT_KIND = "inference"


def get_kind(name):
    """The :class:`Kind` called ``name``; a clear error lists the valid names."""
    from .config import ConfigError
    if not isinstance(name, str) or name not in KINDS:
        valid = ", ".join(f"{k!r} ({kind.description})" for k, kind in KINDS.items())
        raise ConfigError(f"kind: expected one of {valid}. Found {name!r}.")
    return KINDS[name]
