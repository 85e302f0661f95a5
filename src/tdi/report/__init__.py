"""The report: the results of a run (model), and one renderer per format."""
