% ProbLog's aggregate library: sum and avg with a group.
:- use_module(library(aggregate)).
0.6::owns(ann, 10). 0.5::owns(ann, 20). 0.3::owns(bob, 5). owns(bob, 1).
total(P, sum<V>) :- owns(P, V).
mean(P, avg<V>) :- owns(P, V).
query(total(ann, _)).
query(mean(bob, _)).
