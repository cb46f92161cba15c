"""hashbench's built-in methods, one file each.

This folder is installed as the package ``hashbench_methods``, and each method
is advertised in the ``hashbench.methods`` entry-point group of pyproject.toml:
exactly the way a third-party plugin package registers its methods.
"""

#: the report's row group of the methods published after the UDHT paper (arXiv:1806.05804, June 2018)
AFTER_UDHT = "after UDHT (2018)"
