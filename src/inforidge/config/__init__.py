"""Stage 0, configuration: dataclasses, vocabularies and the YAML + ``--set`` loader.

A leaf: imports neither torch nor transformers, so ``inforidge config`` and config
validation are fast and happen before any run folder is written.
"""
