% Recursion over numbers with probabilistic steps.
0.5::step(N) :- between(1, 5, N).
reach(0).
reach(N) :- between(1, 5, N), M is N - 1, reach(M), step(N).
query(reach(N)) :- between(3, 5, N).
