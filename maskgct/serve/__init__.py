"""Serving MaskGCT: ``maskgct serve`` runs an OpenAI-compatible HTTP API (and, with ``--ui``, a web page).

``server`` routes the requests, ``requests`` checks their bodies, ``worker`` runs the one model instance
on one thread behind a bounded queue, ``voices`` keeps the registered prompts on disk, ``spectrogram``
draws the page's picture, and ``static/`` holds the page itself.
"""
