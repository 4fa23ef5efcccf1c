"""A SIP redirect server in front of the decision: any proxy, SBC or PBX asks with an INVITE and is answered
302 (go on, to the carrier route) or 603 (refused), as FastAGI's ``check`` decides (docs/sip.md).

``message``, ``framing``, ``transactions`` and ``redirect`` are sans-I/O; ``server`` is the asyncio adapter.
"""
