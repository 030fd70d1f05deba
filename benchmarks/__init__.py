"""The benchmarks: each one a module run from the repository's root, ``python -m benchmarks.<name>``.

``harness`` holds what every benchmark shares (its argument parser, working folder, sandbox, the end of its
report, tables and ratios), ``common`` the measurements (peak memory, CPU, measured child processes), and
``tests.support`` the sandbox launcher and Airflow helpers the tests use too. ``python -m benchmarks.run_all``
runs them all.
"""
