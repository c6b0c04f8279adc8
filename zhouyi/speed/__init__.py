"""`zhouyi bench`: short real trainings of a spec, measured from inside LLaMA-Factory's trainer."""
