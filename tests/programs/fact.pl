% A single probabilistic fact, queried at arity 0.
0.3::rain.
query(rain).
