"""Learners: one file each, its config class beside its factory ``make_<algo>(cfg, spec, …) -> Algorithm``.

A factory receives values (the config, the env's ``EnvSpec``, and for distillation the ``Teacher``
values) and never looks anything up; ``running/build.py`` holds the registry that maps an ``algo`` name
to its config class and factory (``jaxrl_policy.register_algorithm`` adds one).
"""
