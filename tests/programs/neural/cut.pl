% ProbLog's cut library with neural conditions.
:- use_module(library(cut)).
nn(c_net, [X]) :: cold(X).
nn(w_net, [X]) :: windy(X).
r(1, X, coat) :- cold(X).
r(2, X, jacket) :- windy(X).
r(3, X, shirt).
wear(X, W) :- cut(r(X, W)).
