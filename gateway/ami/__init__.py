"""The AMI watcher: confirms attempts and flags calls that reached a trunk without a decision."""
