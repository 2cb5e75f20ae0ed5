# Every case file under cases/ (the `harness_case_dirs` ini option) is collected as one test item.
pytest_plugins = ["harness.pytest_collect"]
