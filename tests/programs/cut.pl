% ProbLog's cut library: the first matching indexed rule wins.
:- use_module(library(cut)).
0.4::cold. 0.5::wind.
r(1, coat) :- cold.
r(2, jacket) :- wind.
r(3, shirt).
wear(X) :- cut(r(X)).
query(wear(_)).
