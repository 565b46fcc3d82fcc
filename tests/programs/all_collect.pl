% all/3 (ProbLog's findall over all solutions) and length/2.
0.2::member_of(a). 0.7::member_of(b). member_of(c).
size(N) :- all(X, member_of(X), L), length(L, N).
query(size(_)).
