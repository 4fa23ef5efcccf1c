"""Replay SIP traces and call lists through a gateway over FastAGI, as Asterisk would.

``sources`` reads a trace (``pcap`` + ``sip`` for captures, ``sipp_csv``, ``plaincsv``)
into calls; ``fastagi`` plays Asterisk's side of each session; ``runner`` paces them;
``report`` sums them up; ``cli`` is ``dnc-gateway replay``.
"""
