"""Many wheels: where they come from (trees, mirrors, indexes over HTTP), the worker pool and
the store."""
