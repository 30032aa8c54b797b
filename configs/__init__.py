"""Experiment configs, one file per experiment (get_config(arg) -> ConfigDict), and their shared
helper common.py. Not installed: presets put the repo on sys.path to import configs.common."""
