"""The paper's ablation tables, runnable with one command (``latentmim ablate TABLE``).

* :mod:`~latentmim.ablate.tables` - rows as config diffs, with the paper's numbers.
* :mod:`~latentmim.ablate.scales` - model sizes and per-dataset patch geometry.
* :mod:`~latentmim.ablate.plan` - options, the per-table plan (epochs from a time budget).
* :mod:`~latentmim.ablate.runner` - resumable execution of the rows.
* :mod:`~latentmim.ablate.evaluate` - Sim / NN / kNN / LP / throughput of a finished row.
* :mod:`~latentmim.ablate.logreg_probe` - the cached-feature logistic-regression probe.
* :mod:`~latentmim.ablate.report` - markdown table and NN-vs-time PNG.
"""
