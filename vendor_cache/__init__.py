"""A content-addressable store for vendored Terraform modules (SPEC §7), usable on its own."""

from vendor_cache.digest import file_digest, iter_tree, tree_digest

__all__ = ["file_digest", "iter_tree", "tree_digest"]
