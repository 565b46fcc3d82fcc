% ProbLog's aggregates over a neural value.
:- use_module(library(aggregate)).
nn(v_net, [X], V, [1, 2, 3]) :: val(X, V).
0.5::bonus(10). 0.5::bonus(20).
total(X, sum<B>) :- val(X, V), bonus(B0), B is B0 + V.
