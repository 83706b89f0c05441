"""Tables, markdown and plots built from a run's saved files."""
