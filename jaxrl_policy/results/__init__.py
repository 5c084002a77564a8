"""Results: statistics (IQM, bootstrap CIs, probability of improvement, profiles), normalised scores, and
reports (curves, tables, figures) from run folders."""
