"""hashbench's built-in methods, one file each.

This folder is installed as the package ``hashbench_methods``, and each method
is advertised in the ``hashbench.methods`` entry-point group of pyproject.toml:
exactly the way a third-party plugin package registers its methods.
"""
