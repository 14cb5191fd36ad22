"""Unit tests of the ntkadv library (one subfolder per subpackage).

pytest runs in "prepend" import mode without ``__init__.py`` files: this file puts
``tests/unit`` on ``sys.path``, so test modules import their shared helpers with
``from _shared import ...`` (and every test file basename is unique in the tree).
"""
