"""Results: statistics (IQM, bootstrap CIs, probability of improvement, profiles), normalised scores, and
reports (curves, tables, figures) from run folders.

Every import points down this list::

    report.py        report_runs: read folders → analyse → write files
    sweep_report.py  a sweep folder's summary.md and sweep.png
    figures.py       matplotlib figures (imported inside the functions)
    tables.py        markdown, LaTeX and JSON of a report
    analysis.py      analyse_runs: every number of a report, pure
    frame.py         load_runs: a pandas DataFrame of every logged window
    curves.py        learning curves from metrics rows, IQM over seeds with CIs
    scores.py        per-task normalisation
    efficiency.py    AUC, env steps to a threshold
    matrices.py      [S, T] score-matrix estimates, average POI, performance profiles
    stats.py         per-run estimators, the bootstrap, Estimate
"""
