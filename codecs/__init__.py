"""Speech codecs of MaskGCT, installed as ``maskgct.codecs``.

The folder is called ``codecs`` in the repository, but ``codecs`` is a standard-library module,
so setuptools maps it to the import name ``maskgct.codecs`` (see ``pyproject.toml``).
"""
