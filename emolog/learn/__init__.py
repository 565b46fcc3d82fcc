"""How a model learns: the one fit loop, losses and optimisers, EM, scene-net pretraining,
early stopping and the record of what changed."""
