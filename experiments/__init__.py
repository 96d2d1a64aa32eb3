"""The paper's runs as reproducible configs (installed as `keras_geo.experiments`).

Each module defines `config() -> keras_geo.config.TrainConfig` and states in
its docstring the exact command and the result the paper reported.
"""
