"""dnc-gateway: real-time do-not-call screening in Asterisk's outbound path."""

__version__ = "0.1.0"
