"""Training: feature cache, the LTU-AS curriculum (stages 0-3), and export to the files inference loads."""
