% ProbLog's aggregate library: max over probabilistic values.
:- use_module(library(aggregate)).
0.5::bid(1). 0.5::bid(3). 0.5::bid(2).
best(max<X>) :- bid(X).
query(best(_)).
