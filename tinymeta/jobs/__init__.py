"""Jobs: whole runs with their task family, held-out evaluation, output directory, summary and figure.

* :mod:`.sine`: ``tinymeta sine`` (Finn et al. 2017, Sec. 5.1);
* :mod:`.omniglot`: ``tinymeta omniglot`` (N-way K-shot characters, MLP);
* :mod:`.rundir`: the rules of an output directory (no silent overwrite, one run at a time, strict JSON);
* :mod:`.omniglot_figures`: the figures of an Omniglot run.

Both jobs build a :class:`~tinymeta.TrainConfig` and run it on the one loop, :func:`tinymeta.train`.
"""
