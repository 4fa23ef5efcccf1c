"""The values the config builds and the layers above read: campaigns, list specs, the ``[gateway]`` table, the
Redis bounds. Leaf modules below ``gateway.config``: they import nothing of the gateway's behaviour, so that the
config can build them and the policy, the registry and the state store read them without importing the config.
"""
