"""A user module that fails while importing."""

raise ImportError("userpkg.broken needs a package that is not installed")
