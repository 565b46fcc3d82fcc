% An annotated disjunction with variables, one choice per ball the network sees.
:- use_module(library(lists)).
nn(ball_net, [X], B, [1, 2, 3]) :: ball(X, B).
0.3::col(B, red); 0.7::col(B, blue) :- member(B, [1, 2, 3]).
seen_red(X) :- ball(X, B), col(B, red).
