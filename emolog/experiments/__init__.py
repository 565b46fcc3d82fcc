"""Many runs compared: the one runner over arms (``runner``), ``emolog experiment`` (regimes x
seeds x sweeps), its tables, the baselines and the scale-out over processes and shards."""
