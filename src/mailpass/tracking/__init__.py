"""Open and click tracking: signed tokens, html rewriting at send time, and recording the hits.

Rewriting happens once, when a message is accepted (``sending``); hits arrive later through the
pixel and click routes in ``mailpass.api.tracking`` and are recorded by ``service``.
"""
