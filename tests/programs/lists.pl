% List builtins: member, append, length, reverse, nth0, sum_list, max_list.
:- use_module(library(lists)).
0.5::pick([1, 2, 3]); 0.5::pick([4, 5]).
has_three :- pick(L), member(3, L).
long :- pick(L), length(L, N), N >= 3.
rev(R) :- pick(L), reverse(L, R).
first(X) :- pick(L), nth0(0, L, X).
joined(J) :- pick(L), append(L, [9], J).
sum(S) :- pick(L), sum_list(L, S).
mx(M) :- pick(L), max_list(L, M).
query(has_three). query(long). query(rev(_)). query(first(_)). query(joined(_)). query(sum(_)). query(mx(_)).
