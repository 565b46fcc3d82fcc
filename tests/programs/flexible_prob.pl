% Flexible probabilities: the probability is computed in the body.
weight(a, 0.25). weight(b, 0.5). weight(c, 0.125).
P::pick(X) :- weight(X, P).
query(pick(_)).
