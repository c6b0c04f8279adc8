"""The evaluation wing: the held-out answers asked and checked (answers, checks), compared with their intervals
(evaluate, stats), written up (reports), traced to training rows (trace), judged by a model (judge), checked for
forgetting (forgetting), and recomputed from a results file by anyone (recompute)."""
