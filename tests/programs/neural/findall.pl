% findall/3 over a neural disjunction and probabilistic facts.
:- use_module(library(lists)).
nn(d_net, [X], D, [0, 1, 2]) :: digit(X, D).
0.4::extra(5). 0.5::extra(7).
picks(X, N) :- findall(D, (digit(X, D), D > 0), L1), findall(E, extra(E), L2), append(L1, L2, L), length(L, N).
