"""The output directory: crash-safe store, one reader, dataset importers, the manifest."""
