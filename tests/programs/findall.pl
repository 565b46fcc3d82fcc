% findall/3 over deterministic facts, then arithmetic on the list.
:- use_module(library(lists)).
score(a, 3). score(b, 5). score(c, 1).
0.5::bonus.
total(T) :- findall(S, score(_, S), L), sum_list(L, T0), bonus, T is T0 + 10.
total(T) :- findall(S, score(_, S), L), sum_list(L, T), \+ bonus.
high :- total(T), T > 10.
query(total(_)).
query(high).
