"""Named number lists as immutable roaring-bitmap snapshots, their loaders and the hot-swap holder."""
