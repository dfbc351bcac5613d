"""Sphinx configuration: MyST Markdown pages, the Python API from docstrings, and the
directives of _ext/attnflow_docs.py (the command reference read from the parser, commands
run at build time). Built strictly by CI: sphinx-build -W --keep-going -n docs docs/_build/html
"""

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "docs" / "_ext")]

project = "attnflow"
author = "the attnflow authors"
copyright = "the attnflow authors"
release = "0.1.0"

extensions = ["myst_parser", "sphinx.ext.autodoc", "sphinx.ext.mathjax", "attnflow_docs"]
myst_enable_extensions = ["dollarmath", "amsmath", "deflist"]
myst_heading_anchors = 3
source_suffix = {".md": "markdown"}
exclude_patterns = ["_build", "_generated", "examples"]

autodoc_typehints = "none"
autodoc_member_order = "bysource"
autodoc_default_options = {"members": False}
# types named in signatures and docstrings that live outside this project
nitpick_ignore_regex = [(r"py:class", r"(np|numpy|sp|sympy|pathlib|collections)\..*")]

html_theme = "alabaster"
html_title = "attnflow"
html_theme_options = {"description": "Symbolic verification of the training dynamics of "
                                     "attention models", "fixed_sidebar": True}
