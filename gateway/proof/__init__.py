"""The proof dossier of one number: what a compliance officer shows a regulator or a complainant.

``dossier`` assembles it from values (pure: the sources in, a :class:`Dossier` out), ``summary`` writes its
plain-language summary in French and English, ``html`` and ``pdf`` render it, and ``gather`` reads the sources
(side store, lists, audit trail, state store) for the CLI (``dnc-gateway proof``) and the API (``/api/proof``).
The package sits beside ``metrics``, above the service: ``gather`` reads a loaded :class:`~gateway.service.Gateway`.
"""
