# Every case file under cases/ (the `harness_case_dirs` ini option) is collected as one test item. The plugin is
# also registered by the package's pytest11 entry point (pyproject.toml), under this same name: one plugin.
pytest_plugins = ["harness.pytest_collect"]
