"""Plugin layer: pytester runs of the plugin."""
