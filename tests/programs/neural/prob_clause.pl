% Probabilistic clauses with variables whose body is neural.
:- use_module(library(lists)).
nn(p_net, [X], P, [a, b, c]) :: person(X, P).
0.3::stress(P) :- member(P, [a, b, c]).
0.6::smokes(X) :- person(X, P), stress(P).
0.1::smokes(X) :- person(X, c).
